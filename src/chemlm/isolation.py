"""Crash isolation for RDKit work: one pathological molecule costs one row, never the run.

RDKit is C++: a molecule that overflows its stack (MolToSmiles on a chain of 20,000 atoms) or trips an assertion
kills the whole Python process, which no `try` can catch. So every step that parses user molecules maps its work over
chunks in worker processes. When a worker dies, its chunk is run again in parts, and so on, until the item that
kills a worker alone is found; that item's result is a `Crash` naming the signal, and every other item's result is
what an uninterrupted run gives. Workers are forked, so they start in milliseconds with RDKit already loaded.

A molecule can also make RDKit hang (a loop in C++ that no signal from Python interrupts). Each worker says which item
it is on (a counter in shared memory, set as the chunk function takes each item from its iterator); an item that has
not finished after `time_limit` seconds has its worker killed and replaced, and is a `Crash` saying so. The items
before it in its chunk run again in a new worker, those after it too.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import pickle
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
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
# Seconds one item may take before it is given up on. RDKit's slowest honest work here (199 descriptors of a
# molecule of a thousand atoms) takes about a second; a hang never ends.
DEFAULT_TIME_LIMIT = 30.0


@dataclass(frozen=True)
class Crash:
    """An item whose worker process died (RDKit crashed) even when it ran alone, `exit_code` being the process's
    (negative: killed by that signal); or an item that did not finish within `time_limit` seconds."""

    exit_code: int = 0
    time_limit: float | None = None

    @property
    def reason(self) -> str:
        if self.time_limit is not None:
            return f"RDKit did not finish in {self.time_limit:g} s"
        if self.exit_code < 0:
            return f"RDKit crashed (signal {-self.exit_code})"
        return f"RDKit crashed (exit code {self.exit_code})"


class WorkerError(RuntimeError):
    """A Python exception raised inside a worker, with the worker's traceback."""


@dataclass(frozen=True)
class Isolation:
    """How RDKit work on user molecules runs: in up to `workers` processes at a time, each item given up on after
    `time_limit` seconds (config `featurize.rdkit_time_limit`)."""

    workers: int = 1
    time_limit: float = DEFAULT_TIME_LIMIT


@dataclass
class _Running:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    start: int
    stop: int
    progress: object  # shared-memory int: the position in the chunk of the item being worked on
    position: int = 0  # the position last seen, and when it was first seen
    since: float = 0.0

    def overdue(self, now: float, time_limit: float) -> bool:
        """Whether the item being worked on has taken more than `time_limit` seconds (the chunk's end, when its
        results are being sent, has no limit)."""
        position = self.progress.value
        if position != self.position:
            self.position, self.since = position, now
        return position < self.stop - self.start and now - self.since > time_limit


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class _Tracked(Sequence):
    """A chunk's items; iterating them records in `progress` which item the chunk function has taken last."""

    def __init__(self, items: list, progress) -> None:
        self.items, self.progress = items, progress

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


    def __iter__(self) -> Iterator:
        for position, item in enumerate(self.items):
            self.progress.value = position
            yield item


def _work(function: Callable[[Sequence], list], items: list, progress, connection: Connection) -> None:
    # An expected crash here is reported by the parent in one line; the stack dump a step's log asks for
    # (chemlm.logs.step_log) is for crashes of the step itself.
    faulthandler.disable()
    try:
        result = function(_Tracked(items, progress))
        progress.value = len(items)
        if len(result) != len(items):
            raise ValueError(f"{function!r} returned {len(result)} results for {len(items)} items")
        connection.send(("ok", result))
    except BaseException:  # noqa: BLE001 - every Python error goes back to the parent, which raises it
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def map_isolated(
    function: Callable[[Sequence[Item]], list[Result]],
    items: Sequence[Item],
    isolation: Isolation = Isolation(),
    chunk_size: int = DEFAULT_CHUNK,
) -> list[Result | Crash]:
    """`function` over chunks of `items` in up to `isolation.workers` processes at a time; results in input order.

    `function` takes its chunk's items by iterating over them once, in order, doing each item's work before it
    takes the next (so the worker knows which item it is on), and returns one result per item. An item that kills
    its worker on its own, or takes more than `isolation.time_limit` seconds, gets a `Crash` instead of a result. A
    Python exception in `function` is raised here as WorkerError, with the worker's traceback.
    """
    context = _context()
    workers, time_limit = max(1, isolation.workers), isolation.time_limit
    results: list[Result | Crash | None] = [None] * len(items)
    pending: deque[tuple[int, int]] = deque(
        (start, min(start + chunk_size, len(items))) for start in range(0, len(items), max(1, chunk_size))
    )
    running: dict[Connection, _Running] = {}
    crashes = 0
    try:
        while pending or running:
            while pending and len(running) < workers:
                start, stop = pending.popleft()
                receiver, sender = context.Pipe(duplex=False)
                progress = context.RawValue("q", 0)
                process = context.Process(target=_work, args=(function, list(items[start:stop]), progress, sender), daemon=True)
                process.start()
                sender.close()
                running[receiver] = _Running(process, receiver, start, stop, progress, since=time.monotonic())
            ready = wait(list(running), timeout=min(1.0, time_limit / 4))
            now = time.monotonic()
            for connection, job in list(running.items()):
                if connection not in ready and job.overdue(now, time_limit):
                    del running[connection]
                    job.process.kill()
                    job.process.join()
                    connection.close()
                    hung = job.start + job.position
                    crashes += 1
                    results[hung] = Crash(time_limit=time_limit)
                    logger.warning("item %d: %s; it is left out", hung, results[hung].reason)
                    # the items before it ran but their results died with the worker: they run again, as those after it
                    pending.extendleft(reversed([(start, stop) for start, stop in ((job.start, hung), (hung + 1, job.stop)) if stop > start]))
            for connection in ready:
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
        logger.warning("%d item(s) crashed RDKit or did not finish and were left out", crashes)
    return results  # type: ignore[return-value]
