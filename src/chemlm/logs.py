"""Logging for workflow steps: everything a step prints, any error and any crash go to its rule's log."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from chemlm.io import InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NAMED_INPUTS = 3  # inputs named in a log's first line and error line; the rest are counted


def describe_job(rule: str, inputs: Sequence[str]) -> str:
    """'rule featurize (input results/hiv/data/table.csv)', with long input lists shortened."""
    named = ", ".join(str(path) for path in inputs[:NAMED_INPUTS])
    more = f" and {len(inputs) - NAMED_INPUTS} more" if len(inputs) > NAMED_INPUTS else ""
    return f"rule {rule} (input {named}{more})" if inputs else f"rule {rule}"


@contextlib.contextmanager
def step_log(snakemake) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr to the job's log (`snakemake.log[0]`) for the duration of a step.

    The log starts with the rule and its inputs. An input error is written as one line naming them; any other
    error with its traceback; either way the step exits non-zero and the last line of the log says why. A crash
    that ends the process (segmentation fault, abort) leaves the Python stack of every thread in the log
    (faulthandler), below the line naming the rule.
    """
    log_path = Path(snakemake.log[0])
    job = describe_job(snakemake.rule, list(snakemake.input))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        faulthandler.enable(file=stream, all_threads=True)
        logger = logging.getLogger("chemlm")
        logger.info("%s", job)
        try:
            yield logger
        except InputError as error:
            stream.write(f"ERROR in {job}: {error}\n")
            sys.stdout, sys.stderr = saved
            print(f"ERROR in {job}: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except BaseException:
            stream.write(f"ERROR in {job}:\n{traceback.format_exc()}")
            raise
        finally:
            faulthandler.disable()
            sys.stdout, sys.stderr = saved
            root.removeHandler(handler)
