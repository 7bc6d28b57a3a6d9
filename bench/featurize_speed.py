"""Time chemlm's featurize on a task table against bare RDKit parsing of the same SMILES.

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
from chemlm.featurize import featurize
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


def time_featurize(table, task: TaskSpec) -> Timing:
    """Parse, canonical SMILES, scaffold, error capture, duplicate merging and QC."""
    start = time.perf_counter()
    featurize(table, task)
    return Timing("chemlm.featurize.featurize", time.perf_counter() - start, len(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help=f"task table (default {DEFAULT_CSV})")
    parser.add_argument("--smiles-column", default="smiles")
    parser.add_argument("--label-column", default="HIV_active", help="a binary label column")
    args = parser.parse_args()

    task = TaskSpec("bench", str(args.csv), args.smiles_column, (args.label_column,), TaskType.BINARY)
    table = read_task_table(args.csv, task)
    print(f"{args.csv}: {len(table):,} rows, {os.cpu_count()} CPUs, RDKit {rdBase.rdkitVersion}")
    baseline = time_bare_parse(table["smiles"].tolist())
    ours = time_featurize(table, task)
    for timing in (baseline, ours):
        print(timing.line())
    print(f"featurize / bare parse: {ours.seconds / baseline.seconds:.2f}x the time")


if __name__ == "__main__":
    main()
