"""Provenance: the config, the code's git commit, package versions, hardware and wall time per rule."""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import subprocess
from pathlib import Path

import pandas as pd
import yaml

import chemlm
from chemlm import layout
from chemlm.io import InputError, read_csv
from chemlm.report.results import DeclaredInputs, StudyResults, read_json_file
from chemlm.report.sections import Section
from chemlm.report.tables import MISSING, Table, details, heading, note, number, paragraph, preformatted

PACKAGES = (
    "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "rdkit", "deepchem", "torch",
    "transformers", "tokenizers", "safetensors", "umap-learn", "snakemake",
)
BENCHMARK_SECONDS = "s"


def git_description(repository: Path) -> str:
    """The commit the workflow's code is at, and whether tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return f"{repository} is not a git checkout (or git is missing)"
    return f"{commit}, with uncommitted changes" if changed else commit


def package_versions(names: tuple[str, ...] = PACKAGES) -> Table:
    # chemlm itself runs from src/ through PYTHONPATH in the conda envs, where it is not an installed package.
    rows = [["chemlm", chemlm.__version__]]
    for name in names:
        try:
            rows.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            rows.append([name, "not installed here"])
    return Table(["package", "version"], rows)


def memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB"
    except (ValueError, OSError, AttributeError):
        return "unknown"


def gpu_names() -> str:
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "none found (no working nvidia-smi)"
    return ", ".join(line.strip() for line in listed.stdout.splitlines() if line.strip()) or "none found"


def this_machine() -> Table:
    rows = [
        ["system", platform.platform()],
        ["python", platform.python_version()],
        ["CPU cores", str(os.cpu_count())],
        ["memory", memory_gib()],
        ["GPUs", gpu_names()],
    ]
    return Table(["", "machine that built this report"], rows)


def finetune_runs(results: StudyResults) -> Table | None:
    """Device, epochs and seconds of every fine-tuning run, from its run.json."""
    rows = []
    for task in results.tasks:
        for split in results.splits:
            for model in results.study.checkpoints:
                for instance in results.study.instances(split):
                    path = results.files(layout.finetune_file("run.json", task, model, split, instance))
                    if not path.is_file():
                        continue
                    run = read_json_file(path)
                    rows.append([
                        task, model, split, instance.name, str(run.get("device", "?")),
                        number(run.get("epochs_run")), number(run.get("best_epoch")),
                        str(run.get("early_stopping_on", "")), number(run.get("seconds"), 1),
                    ])
    if not rows:
        return None
    return Table(["task", "model", "split", "split instance", "device", "epochs run", "epoch kept", "stopped on", "seconds"], rows)


def benchmark_table(files: DeclaredInputs) -> Table | None:
    """Jobs, wall time and peak memory per rule from Snakemake's benchmark files, benchmarks/<rule>[/...].tsv."""
    frames = []
    for name in files.where("benchmarks/"):
        path = files(name)
        if not path.is_file():
            continue
        table = read_csv(path, sep="\t")
        if BENCHMARK_SECONDS not in table.columns:
            raise InputError(f"{path}: not a Snakemake benchmark file (no column '{BENCHMARK_SECONDS}')")
        rss = table["max_rss"] if "max_rss" in table.columns else pd.Series(math.nan, index=table.index)
        frames.append(pd.DataFrame({
            "rule": Path(name).parts[1].removesuffix(".tsv"),
            "seconds": pd.to_numeric(table[BENCHMARK_SECONDS], errors="coerce"),
            "max_rss": pd.to_numeric(rss, errors="coerce"),
        }))
    if not frames:
        return None
    per_rule = (
        pd.concat(frames).groupby("rule", sort=False)
        .agg(jobs=("seconds", "size"), total=("seconds", "sum"), mean=("seconds", "mean"), longest=("seconds", "max"), max_rss=("max_rss", "max"))
        .sort_values("total", ascending=False)
    )
    rows = [
        [str(row.Index), str(row.jobs), f"{row.total:.1f}", f"{row.mean:.1f}", f"{row.longest:.1f}", number(row.max_rss, 0)]
        for row in per_rule.itertuples()
    ]
    rows.append(["all rules", str(int(per_rule["jobs"].sum())), f"{per_rule['total'].sum():.1f}", MISSING, MISSING, MISSING])
    return Table(["rule", "jobs", "total s", "mean s", "longest s", "peak memory MB"], rows)


def provenance_section(results: StudyResults, repository: Path) -> Section:
    runs = finetune_runs(results)
    benchmarks = benchmark_table(results.files)
    body = (
        paragraph(f"Report built {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}.")
        + heading("Code") + paragraph(f"git commit: {git_description(repository)}")
        + heading("Wall time per rule")
        + (benchmarks.html() if benchmarks else note("No benchmark files."))
        + paragraph("Seconds summed over a rule's jobs (Snakemake benchmark files), which may have run in parallel; "
                    "the report's own time is in its benchmark file once it has finished.")
        + heading("Fine-tuning runs")
        + (runs.html() if runs else note("No fine-tuning run records (run.json)."))
        + heading("Hardware") + this_machine().html()
        + heading("Package versions")
        + paragraph("As installed where this report was built; envs/*.yaml pin the versions each step's environment uses.")
        + package_versions().html()
        + heading("Config")
        + details("The config this run used, defaults filled in", preformatted(yaml.safe_dump(results.study.config, sort_keys=False)))
    )
    return Section("provenance", "Provenance", body)
