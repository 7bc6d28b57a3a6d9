"""What the report reads: the study's result files, only those its rules declare as inputs (docs/design.md)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from chemlm import layout
from chemlm.comparison import MethodComparison
from chemlm.config import Study
from chemlm.report.comparison import headline_metric, not_learned_models, study_comparisons
from chemlm.evaluate import PER_INSTANCE_COLUMNS, SUMMARY_COLUMNS
from chemlm.io import InputError, read_csv, read_json
from chemlm.tasks import TaskSpec, TaskType

# The metric each task type is validated on during fine-tuning.
VALIDATION_METRIC = {
    TaskType.BINARY: "auroc",
    TaskType.MULTILABEL: "auroc",
    TaskType.MULTICLASS: "macro_f1",
    TaskType.REGRESSION: "rmse",
}
METRIC_LABELS = {"auroc": "AUROC", "auprc": "AUPRC", "macro_f1": "macro-F1", "balanced_accuracy": "balanced accuracy", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


@dataclass(frozen=True)
class Stat:
    """A metric over split instances: mean, sample sd (NaN with one instance) and the number of instances."""

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


class DeclaredInputs:
    """The files a report step may read: exactly those its rule declares as input (paths relative to `root`, the
    workflow's working directory). Reading any other is an error, so the report never shows a stale file."""

    def __init__(self, paths: Iterable[str | Path], root: str | Path = "."):
        self.root = Path(root)
        self.paths = frozenset(os.path.normpath(str(path)) for path in paths)

    def __call__(self, path: str) -> Path:
        if os.path.normpath(path) not in self.paths:
            raise InputError(f"{path}: read by the report but not an input of its rule (chemlm.layout.report_inputs)")
        return self.root / path

    def where(self, prefix: str) -> list[str]:
        """The declared paths under `prefix`, sorted."""
        return sorted(path for path in self.paths if path.startswith(prefix))


@dataclass(frozen=True)
class StudyResults:
    """The study's tasks and models with their metrics, and the declared files the report reads.

    Models are the names of summary.csv's `checkpoint` column: fine-tuned transformers (the study's checkpoints)
    and baselines.
    """

    study: Study
    files: DeclaredInputs
    summary: pd.DataFrame
    per_instance: pd.DataFrame

    @classmethod
    def load(cls, study: Study, files: DeclaredInputs) -> StudyResults:
        tables = {}
        for path, columns in ((layout.SUMMARY, SUMMARY_COLUMNS), (layout.PER_INSTANCE, PER_INSTANCE_COLUMNS)):
            table = read_csv(files(path), dtype={"task": str, "checkpoint": str, "split": str, "instance": str, "metric": str})
            missing = [column for column in columns if column not in table.columns]
            if missing:
                raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
            tables[path] = table
        return cls(study, files, tables[layout.SUMMARY], tables[layout.PER_INSTANCE])

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return self.study.tasks

    @property
    def splits(self) -> tuple[str, ...]:
        return self.study.splits

    @property
    def transformers(self) -> list[str]:
        return list(self.study.checkpoints)

    def models(self, task: str | None = None, split: str | None = None) -> list[str]:
        """Models of the study with results (of `task` and `split` when given): transformers, then baselines."""
        rows = self.summary
        if task is not None:
            rows = rows[rows["task"] == task]
        if split is not None:
            rows = rows[rows["split"] == split]
        found = set(rows["checkpoint"])
        return [name for name in self.study.models if name in found]

    def is_baseline(self, model: str) -> bool:
        return self.study.is_baseline(model)

    def metric_for(self, task: str, preferred: str) -> str:
        """The task's headline metric: `preferred` where the task type compares it, else the type's first."""
        return headline_metric(self.tasks[task], preferred)

    @cached_property
    def comparisons(self) -> dict[tuple[str, str, str], MethodComparison]:
        """(task, split, metric) -> every pair of models over the split instances, as the compare rule computes them."""
        return study_comparisons(self.per_instance, self.tasks, self.splits, self.study.compare)

    @cached_property
    def _not_learned(self) -> dict[tuple[str, str], dict[str, str]]:
        return {(task, split): not_learned_models(self.per_instance, task, split, self.study.compare)
                for task in self.tasks for split in self.splits}

    def not_learned(self, task: str, split: str) -> dict[str, str]:
        """Models whose test predictions barely vary in most split instances of `task` and `split`, with why."""
        return self._not_learned[(task, split)]

    def stat(self, task: str, model: str, split: str, metric: str) -> Stat | None:
        rows = self.summary[
            (self.summary["task"] == task) & (self.summary["checkpoint"] == model)
            & (self.summary["split"] == split) & (self.summary["metric"] == metric)
        ]
        if rows.empty or pd.isna(rows["mean"].iloc[0]):
            return None
        row = rows.iloc[0]
        return Stat(float(row["mean"]), float(row["sd"]), int(row["n_instances"]))

    def instance_values(self, task: str, model: str, split: str, metric: str) -> dict[str, float]:
        rows = self.per_instance[
            (self.per_instance["task"] == task) & (self.per_instance["checkpoint"] == model)
            & (self.per_instance["split"] == split) & (self.per_instance["metric"] == metric)
        ].dropna(subset=["value"])
        return {str(instance): float(value) for instance, value in zip(rows["instance"], rows["value"])}


def read_json_file(path: Path) -> Any:
    """A JSON file's contents; a broken file is an input error naming it."""
    try:
        return read_json(path)
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None
