"""What the report reads: the `report` config block and the workflow's result files (docs/design.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from chemlm.evaluate import PER_SEED_COLUMNS, SUMMARY_COLUMNS
from chemlm.io import InputError, read_csv, read_json
from chemlm.tasks import TaskSpec, TaskType

# The metric each task type is validated on during fine-tuning; a task reports it when it lacks `report.metric`.
VALIDATION_METRIC = {
    TaskType.BINARY: "auroc",
    TaskType.MULTILABEL: "auroc",
    TaskType.MULTICLASS: "macro_f1",
    TaskType.REGRESSION: "rmse",
}
CURVES_FIGURE = "test_curves.png"
LEARNING_FIGURE = "learning_curves.png"
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
METRIC_LABELS = {"auroc": "AUROC", "auprc": "AUPRC", "macro_f1": "macro-F1", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class ReportSettings:
    """The `report` config block: the headline metric, the published references and the paired checkpoints."""

    metric: str
    published: dict[str, float]
    published_task: str
    published_split: str
    paired: tuple[str, str] | None

    @classmethod
    def from_config(cls, report: Mapping[str, Any]) -> ReportSettings:
        paired = report["paired"]
        return cls(
            metric=report["metric"],
            published={str(name): float(value) for name, value in report["published"].items()},
            published_task=report["published_task"],
            published_split=report["published_split"],
            paired=(paired[0], paired[1]) if paired else None,
        )


@dataclass(frozen=True)
class Stat:
    """A metric over seeds: mean, sample sd (NaN with one seed) and the number of seeds."""

    mean: float
    sd: float
    n: int

    def text(self) -> str:
        """For table cells: '0.812 ± 0.004 (n=3)'."""
        return f"{self.spread()} (n={self.n})"

    def inline(self) -> str:
        """For sentences: '0.812 ± 0.004, n=3'."""
        return f"{self.spread()}, n={self.n}"

    def spread(self) -> str:
        if self.n > 1 and not math.isnan(self.sd):
            return f"{self.mean:.3f} ± {self.sd:.3f}"
        return f"{self.mean:.3f}"


@dataclass(frozen=True)
class StudyResults:
    """The tasks, models and metrics of one workflow run, and where each run's files are.

    Models are the names of summary.csv's `checkpoint` column: fine-tuned transformers (the config's
    checkpoints) and baselines. `root` is the results directory that holds summary.csv.
    """

    root: Path
    tasks: dict[str, TaskSpec]
    splits: list[str]
    transformers: list[str]
    baselines: list[str]
    summary: pd.DataFrame
    per_seed: pd.DataFrame

    @classmethod
    def load(cls, config: Mapping[str, Any], summary_csv: str | Path, per_seed_csv: str | Path) -> StudyResults:
        summary = read_csv(summary_csv, dtype={"task": str, "checkpoint": str, "split": str, "metric": str})
        per_seed = read_csv(per_seed_csv, dtype={"task": str, "checkpoint": str, "split": str, "metric": str})
        for path, table, columns in ((summary_csv, summary, SUMMARY_COLUMNS), (per_seed_csv, per_seed, PER_SEED_COLUMNS)):
            missing = [column for column in columns if column not in table.columns]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        return cls(
            root=Path(summary_csv).parent,
            tasks={name: TaskSpec.from_config(name, entry) for name, entry in config["tasks"].items()},
            splits=list(config["split"]["methods"]),
            transformers=list(config["checkpoints"]),
            baselines=list(config["baselines"]),
            summary=summary,
            per_seed=per_seed,
        )

    def models(self, task: str | None = None, split: str | None = None) -> list[str]:
        """Models with results (of `task` and `split` when given): transformers, then baselines, in config order."""
        rows = self.summary
        if task is not None:
            rows = rows[rows["task"] == task]
        if split is not None:
            rows = rows[rows["split"] == split]
        found = set(rows["checkpoint"])
        ordered = [name for name in [*self.transformers, *self.baselines] if name in found]
        return ordered + sorted(found - set(ordered))

    def is_baseline(self, model: str) -> bool:
        return model not in self.transformers

    def metric_for(self, task: str, preferred: str) -> str:
        """`preferred` if the task has it in the summary, else the task type's validation metric."""
        if ((self.summary["task"] == task) & (self.summary["metric"] == preferred)).any():
            return preferred
        return VALIDATION_METRIC[self.tasks[task].type]

    def stat(self, task: str, model: str, split: str, metric: str) -> Stat | None:
        rows = self.summary[
            (self.summary["task"] == task) & (self.summary["checkpoint"] == model)
            & (self.summary["split"] == split) & (self.summary["metric"] == metric)
        ]
        if rows.empty or pd.isna(rows["mean"].iloc[0]):
            return None
        row = rows.iloc[0]
        return Stat(float(row["mean"]), float(row["sd"]), int(row["n_seeds"]))

    def seed_values(self, task: str, model: str, split: str, metric: str) -> dict[int, float]:
        rows = self.per_seed[
            (self.per_seed["task"] == task) & (self.per_seed["checkpoint"] == model)
            & (self.per_seed["split"] == split) & (self.per_seed["metric"] == metric)
        ].dropna(subset=["value"])
        return {int(seed): float(value) for seed, value in zip(rows["seed"], rows["value"])}

    def seeds(self, task: str, model: str, split: str) -> list[int]:
        rows = self.per_seed[
            (self.per_seed["task"] == task) & (self.per_seed["checkpoint"] == model) & (self.per_seed["split"] == split)
        ]
        return sorted({int(seed) for seed in rows["seed"]})

    def run_dir(self, task: str, model: str, split: str, seed: int) -> Path:
        """A run's folder: fine-tuning output for transformers, baseline output for baselines."""
        stage = "baselines" if self.is_baseline(model) else "finetune"
        return self.root / task / stage / model / split / f"seed{seed}"

    def data_dir(self, task: str) -> Path:
        return self.root / task / "data"

    def split_summary_files(self, task: str, split: str) -> list[Path]:
        folder = self.root / task / "splits" / split
        return sorted(folder.glob("seed*.json"), key=seed_of)

    def projection_dirs(self, task: str, model: str, split: str) -> list[Path]:
        folder = self.root / task / "projections" / model / split
        return sorted((path for path in folder.glob("seed*") if path.is_dir()), key=seed_of)

    def figure(self, task: str, split: str, name: str) -> Path:
        """A report figure: results/report/figures/{task}/{split}/{name} (rules/report.smk makes them)."""
        return self.root / "report" / "figures" / task / split / name


def seed_of(path: Path) -> int:
    """The seed in a `seed{seed}` file or folder name."""
    return int(path.stem.removeprefix("seed"))


def read_json_file(path: Path) -> Any:
    """A JSON file's contents; a broken file is an input error naming it."""
    try:
        return read_json(path)
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
