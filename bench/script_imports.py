"""The fixed cost of each rule's job: the time its script takes to import what it imports, in a fresh interpreter,
and the heavy libraries that loads; beside a bare interpreter that imports numpy and pandas (the baseline every
script pays).

    .venv/bin/python bench/script_imports.py [--repeats 3]

A job's wall time is this plus Snakemake's own start-up of the script and the work itself (benchmarks/<rule>/).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from script_imports import HEAVY, imported_modules, loading_code  # noqa: E402


def import_seconds(modules: list[str], repeats: int) -> tuple[float, list[str]]:
    times, loaded = [], []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", loading_code(modules)], capture_output=True, text=True, check=True)
        seconds, *loaded = out.stdout.split()
        times.append(float(seconds))
    return statistics.median(times), loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    baseline, _ = import_seconds(["numpy", "pandas"], args.repeats)
    print(f"baseline (numpy, pandas): {baseline:.2f} s, median of {args.repeats}")
    print(f"{'script':22s} {'import s':>8s} {'x baseline':>10s}  heavy libraries loaded")
    for script in sorted((REPO / "scripts").glob("*.py")):
        seconds, loaded = import_seconds(imported_modules(script), args.repeats)
        print(f"{script.stem:22s} {seconds:8.2f} {seconds / baseline:10.1f}  {' '.join(loaded) or '-'}")
    print(f"(heavy: {', '.join(HEAVY)})")


if __name__ == "__main__":
    main()
