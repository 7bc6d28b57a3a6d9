"""Time chemlm's featurize on a task table against bare RDKit parsing of the same SMILES, and the cost of crash
isolation: parsing in forked worker processes (chemlm.isolation) against parsing in the step's own process.

Run: .venv/bin/python bench/featurize_speed.py [--csv PATH] [--smiles-column smiles] [--label-column HIV_active]
Defaults to the full MoleculeNet HIV set in the shared folder (CHEMLM_SHARED, else ../shared beside the repo).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rdkit import Chem, rdBase

from chemlm.data.ingest import read_task_table
from chemlm.featurize import featurize, parse_all, parse_chunk
from chemlm.isolation import Isolation
from chemlm.tasks import TaskSpec, TaskType

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CHEMLM_SHARED", REPO / "../shared")).resolve()
DEFAULT_CSV = SHARED / "data" / "moleculenet" / "HIV.csv"


@dataclass
class Timing:
    name: str
    seconds: float
    molecules: int

    @property
    def rate(self) -> float:
        return self.molecules / self.seconds

    def line(self) -> str:
        return f"{self.name:<34} {self.seconds:8.2f} s  {self.rate:10,.0f} SMILES/s"


def time_bare_parse(smiles: list[str]) -> Timing:
    """The floor: RDKit parsing with sanitization and nothing else."""
    start = time.perf_counter()
    with rdBase.BlockLogs():
        for text in smiles:
            Chem.MolFromSmiles(text)
    return Timing("bare Chem.MolFromSmiles", time.perf_counter() - start, len(smiles))


def time_parse_in_process(smiles: list[str]) -> Timing:
    """Parse, canonical SMILES, scaffold and error capture in this process: no isolation."""
    start = time.perf_counter()
    parse_chunk(smiles, True)
    return Timing("parse in process (not isolated)", time.perf_counter() - start, len(smiles))


def time_parse_isolated(smiles: list[str], workers: int) -> Timing:
    start = time.perf_counter()
    parse_all(smiles, True, Isolation(workers))
    return Timing(f"parse isolated, {workers} worker(s)", time.perf_counter() - start, len(smiles))


def time_featurize(table, task: TaskSpec, workers: int) -> Timing:
    """Parse (isolated), canonical SMILES, scaffold, error capture, duplicate merging and QC."""
    start = time.perf_counter()
    featurize(table, task, isolation=Isolation(workers))
    return Timing(f"featurize, {workers} worker(s)", time.perf_counter() - start, len(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help=f"task table (default {DEFAULT_CSV})")
    parser.add_argument("--smiles-column", default="smiles")
    parser.add_argument("--label-column", default="HIV_active", help="a binary label column")
    args = parser.parse_args()

    task = TaskSpec("bench", str(args.csv), args.smiles_column, (args.label_column,), TaskType.BINARY)
    table = read_task_table(args.csv, task)
    print(f"{args.csv}: {len(table):,} rows, {os.cpu_count()} CPUs, RDKit {rdBase.rdkitVersion}")
    smiles = table["smiles"].tolist()
    workers = os.cpu_count() or 1
    baseline = time_bare_parse(smiles)
    in_process = time_parse_in_process(smiles)
    isolated = time_parse_isolated(smiles, 1)
    parallel = time_parse_isolated(smiles, workers)
    single, ours = time_featurize(table, task, 1), time_featurize(table, task, workers)
    for timing in (baseline, in_process, isolated, parallel, single, ours):
        print(timing.line())
    print(f"isolation overhead (1 worker vs in process): {isolated.seconds / in_process.seconds - 1:+.1%}")
    print(f"featurize with {workers} workers / bare parse: {ours.seconds / baseline.seconds:.2f}x the time")


if __name__ == "__main__":
    main()
