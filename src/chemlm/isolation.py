"""Crash isolation for RDKit work: one pathological molecule costs one row, never the run.

RDKit is C++: a molecule that overflows its stack (MolToSmiles on a chain of 20,000 atoms) or trips an assertion
kills the whole Python process, which no `try` can catch. So every step that parses user molecules maps its work over
chunks in worker processes. When a worker dies, its chunk is run again in parts, and so on, until the item that
kills a worker alone is found; that item's result is a `Crash` naming the signal, and every other item's result is
what an uninterrupted run gives. Workers are forked, so they start in milliseconds with RDKit already loaded.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import pickle
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_CHUNK = 2000  # items per worker: large enough that forking costs nothing, small enough to spread the work
# A crashed chunk runs again in this many parts, and so on: the culprit is found after log_8(chunk) more crashes
# (each can take seconds: RDKit recursing through 20,000 atoms until the stack runs out).
SPLIT_PARTS = 8


@dataclass(frozen=True)
class Crash:
    """An item whose worker process died (RDKit crashed) even when it ran alone; `exit_code` is the process's
    (negative: killed by that signal)."""

    exit_code: int

    @property
    def reason(self) -> str:
        if self.exit_code < 0:
            return f"RDKit crashed (signal {-self.exit_code})"
        return f"RDKit crashed (exit code {self.exit_code})"


class WorkerError(RuntimeError):
    """A Python exception raised inside a worker, with the worker's traceback."""


@dataclass
class _Running:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    start: int
    stop: int


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _work(function: Callable[[list], list], items: list, connection: Connection) -> None:
    # An expected crash here is reported by the parent in one line; the stack dump a step's log asks for
    # (chemlm.logs.step_log) is for crashes of the step itself.
    faulthandler.disable()
    try:
        result = function(items)
        if len(result) != len(items):
            raise ValueError(f"{function!r} returned {len(result)} results for {len(items)} items")
        connection.send(("ok", result))
    except BaseException:  # noqa: BLE001 - every Python error goes back to the parent, which raises it
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def map_isolated(
    function: Callable[[list[Item]], list[Result]],
    items: Sequence[Item],
    workers: int = 1,
    chunk_size: int = DEFAULT_CHUNK,
) -> list[Result | Crash]:
    """`function` over chunks of `items` in up to `workers` processes at a time; results in input order.

    An item that kills its worker on its own gets a `Crash` instead of a result. A Python exception in `function`
    is raised here as WorkerError, with the worker's traceback.
    """
    context = _context()
    results: list[Result | Crash | None] = [None] * len(items)
    pending: deque[tuple[int, int]] = deque(
        (start, min(start + chunk_size, len(items))) for start in range(0, len(items), max(1, chunk_size))
    )
    running: dict[Connection, _Running] = {}
    crashes = 0
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                start, stop = pending.popleft()
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(target=_work, args=(function, list(items[start:stop]), sender), daemon=True)
                process.start()
                sender.close()
                running[receiver] = _Running(process, receiver, start, stop)
            for connection in wait(list(running)):
                job = running.pop(connection)
                try:
                    status, payload = connection.recv()
                except (EOFError, OSError, pickle.UnpicklingError):  # the worker died before it had answered
                    status, payload = "died", None
                connection.close()
                job.process.join()
                if status == "error":
                    raise WorkerError(payload)
                if status == "ok":
                    results[job.start : job.stop] = payload
                    continue
                crash = Crash(int(job.process.exitcode or 0))
                if job.stop - job.start == 1:
                    crashes += 1
                    results[job.start] = crash
                    logger.warning("item %d: %s; it is left out", job.start, crash.reason)
                    continue
                logger.info("%s on items %d-%d: running them again in parts", crash.reason, job.start, job.stop - 1)
                bounds = sorted({job.start + (job.stop - job.start) * part // SPLIT_PARTS for part in range(SPLIT_PARTS + 1)})
                pending.extendleft(reversed(list(zip(bounds[:-1], bounds[1:]))))
    finally:
        for job in running.values():
            job.process.kill()
            job.process.join()
    if crashes:
        logger.warning("%d item(s) crashed RDKit and were left out", crashes)
    return results  # type: ignore[return-value]


def worker_count(threads: int) -> int:
    """Worker processes for a rule's `threads`, never more than the machine's cores."""
    return max(1, min(threads, os.cpu_count() or 1))
