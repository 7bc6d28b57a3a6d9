"""A baseline's run files in the fine-tuning format (docs/design.md, item 5): its predictions of the valid and test
folds, their calibration and its settings, so that evaluation, the summary and the report treat it like any
fine-tuned checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.calibration import fit_predictions
from chemlm.io import write_csv, write_json
from chemlm.tasks import TaskSpec, label_header

PREDICTED_FOLDS = ("valid", "test")


def write_run_files(
    task: TaskSpec, rows: pd.DataFrame, columns: list[str], values: np.ndarray, record: dict,
    predictions_csv: Path, calibration_json: Path, settings_json: Path,
) -> pd.DataFrame:
    """A baseline's predictions of its valid and test `rows` (`values`: one column per prediction column) in the
    fine-tuning format, their calibration fitted on the valid rows, and its settings `record`."""
    table = pd.DataFrame({"mol_id": rows["mol_id"].to_numpy(), "fold": rows["fold"].to_numpy()})
    for label in task.label_columns:
        table[label_header(label)] = rows[label].to_numpy()
    for column, column_values in zip(columns, np.asarray(values).T):
        table[column] = column_values
    # valid rows first, then test, as fine-tuning writes them
    table = table.sort_values("fold", key=lambda fold: fold.map(PREDICTED_FOLDS.index), kind="stable").reset_index(drop=True)
    write_csv(table, predictions_csv)
    write_json(fit_predictions(table, task), calibration_json)
    write_json(record, settings_json)
    return table
