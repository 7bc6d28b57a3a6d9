"""Logging for workflow steps: everything a step prints, and any error, goes to its rule's log."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from chemlm.io import InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def step_log(log_path: str | Path) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr to `log_path` for the duration of a step.

    An input error is written as one line; any other error with its traceback. Either way the step
    exits non-zero and the last line of the log says why.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = stream
        try:
            yield logging.getLogger("chemlm")
        except InputError as error:
            stream.write(f"ERROR: {error}\n")
            sys.stdout, sys.stderr = saved
            print(f"ERROR: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except BaseException:
            stream.write(traceback.format_exc())
            raise
        finally:
            sys.stdout, sys.stderr = saved
            root.removeHandler(handler)
