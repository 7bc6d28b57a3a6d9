"""What a prediction task is: its type and its label columns. Shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chemlm.folds import FOLDS


class TaskType(str, Enum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    REGRESSION = "regression"

    @property
    def is_classification(self) -> bool:
        return self is not TaskType.REGRESSION


# Where a `rule_tasks` entry writes its table (chemlm.explain.ground_truth), which the task of its name reads: here
# rather than in chemlm.layout (which gives it to the rules) so that the config check can name it without importing
# chemlm.layout, which imports the config.
RULE_TASK_TABLE = "results/rule_tasks/{name}.csv"


@dataclass(frozen=True)
class FoldSource:
    """Where a `predefined` split's folds come from: a column of the task's own table (train, valid or test in each
    row), or one table per fold whose molecules are matched to the task's by canonical SMILES."""

    column: str | None = None
    files: tuple[tuple[str, str], ...] = ()  # (fold, path), train, valid, test

    @classmethod
    def from_config(cls, entry: dict) -> FoldSource:
        if "column" in entry:
            return cls(column=str(entry["column"]))
        return cls(files=tuple((fold, str(entry[fold])) for fold in FOLDS))


@dataclass(frozen=True)
class TaskSpec:
    """One task of the config: where its table is and how to read it.

    `source` is a URL or a path: a CSV (comma, semicolon or tab), a TSV, or an SD file whose properties hold the
    labels and ids; plain or gzipped. Binary and multi-class tasks have exactly one
    label column; multi-label and regression tasks may have several, and multi-label ones may have
    missing values, which are masked in the loss and in the metrics.
    """

    name: str
    source: str
    smiles_column: str | None  # None for an SD file, whose molecules are its connection tables
    label_columns: tuple[str, ...]
    type: TaskType
    id_column: str | None = None
    sha256: str | None = None
    folds: FoldSource | None = None  # the `predefined` split's folds, where the task has them

    def __post_init__(self) -> None:
        if not self.label_columns:
            raise ValueError(f"task '{self.name}': label_columns is empty")
        if self.type in (TaskType.BINARY, TaskType.MULTICLASS) and len(self.label_columns) != 1:
            raise ValueError(
                f"task '{self.name}': a {self.type.value} task takes exactly one label column, "
                f"got {len(self.label_columns)}"
            )

    @classmethod
    def from_config(cls, name: str, entry: dict) -> TaskSpec:
        return cls(
            name=name,
            source=str(entry["source"]),
            smiles_column=entry.get("smiles_column"),
            label_columns=tuple(entry["label_columns"]),
            type=TaskType(entry["type"]),
            id_column=entry.get("id_column"),
            sha256=entry.get("sha256"),
            folds=FoldSource.from_config(entry["folds"]) if "folds" in entry else None,
        )


def label_header(label: str) -> str:
    """Column holding a true label in prediction files."""
    return f"y:{label}"


def prediction_header(name: str) -> str:
    """Column holding a prediction in prediction files: a probability (classification) or a value."""
    return f"p:{name}"
