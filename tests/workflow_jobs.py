"""The jobs of a Snakemake dry run, read from its output: rule, wildcards, inputs and outputs of each job, and the
graph between them. `snakemake -n` lists the jobs a run would do; `snakemake -n -F` lists every job of the workflow."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# A job's block starts with "rule NAME:" (or localrule/checkpoint) and goes on with indented "key: value" lines.
_HEADER = re.compile(r"^(?:rule|localrule|checkpoint|localcheckpoint) (\w+):$")
_ITEM = re.compile(r"^    (\w+): (.*)$")


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: tuple[tuple[str, str], ...]
    inputs: frozenset[str] = field(compare=False)
    outputs: frozenset[str] = field(compare=False)
    reason: str = field(compare=False)
    resources: tuple[tuple[str, str], ...] = field(compare=False)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.rule, self.wildcards

    def names(self, value: str) -> bool:
        """Whether any wildcard of this job has this value (a checkpoint's, a seed's...)."""
        return value in dict(self.wildcards).values()

    def wildcard(self, name: str) -> str | None:
        return dict(self.wildcards).get(name)

    def __str__(self) -> str:
        wildcards = ", ".join(f"{name}={value}" for name, value in self.wildcards)
        return f"{self.rule}({wildcards})"


def _split_list(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(", ") if part.strip())


def _pairs(value: str) -> tuple[tuple[str, str], ...]:
    """`a=1, b=x` as sorted (name, value) pairs."""
    return tuple(sorted(tuple(pair.split("=", 1)) for pair in value.split(", ") if "=" in pair))


def parse_dry_run(text: str) -> dict[tuple, Job]:
    """Every job block in a dry run's output, by (rule, wildcards). Fails on a job listed twice."""
    jobs: dict[tuple, Job] = {}
    lines = text.splitlines()
    for start, line in enumerate(lines):
        header = _HEADER.match(line)
        if not header:
            continue
        items: dict[str, str] = {}
        for item_line in lines[start + 1 :]:
            item = _ITEM.match(item_line)
            if not item:
                break
            items[item.group(1)] = item.group(2)
        job = Job(
            rule=header.group(1),
            wildcards=_pairs(items.get("wildcards", "")),
            inputs=_split_list(items.get("input", "")),
            outputs=_split_list(items.get("output", "")),
            reason=items.get("reason", ""),
            resources=_pairs(items.get("resources", "")),
        )
        if job.key in jobs:
            raise ValueError(f"{job} is listed twice")
        jobs[job.key] = job
    return jobs


def downstream(jobs: dict[tuple, Job], seeds: Iterable[Job]) -> set[Job]:
    """The seed jobs and every job that uses, directly or not, an output of one of them."""
    producer = {path: job for job in jobs.values() for path in job.outputs}
    consumers: dict[Job, set[Job]] = {}
    for job in jobs.values():
        for path in job.inputs:
            if path in producer:
                consumers.setdefault(producer[path], set()).add(job)
    reached, frontier = set(), list(seeds)
    while frontier:
        job = frontier.pop()
        if job not in reached:
            reached.add(job)
            frontier.extend(consumers.get(job, ()))
    return reached


def by_rule(jobs: Iterable[Job]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.rule] = counts.get(job.rule, 0) + 1
    return dict(sorted(counts.items()))
