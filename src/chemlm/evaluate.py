"""Predictions file -> metrics file (design items 5 and 6); all metrics files -> the summary (item 7).

Metrics are computed on the test fold. The valid fold is used only to choose the binary threshold.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chemlm.io import InputError, read_csv, read_json, write_csv, write_json
from chemlm.metrics import (
    LabelScores,
    ThresholdMetrics,
    auprc,
    auroc,
    binary_metrics,
    bootstrap_interval,
    choose_threshold,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
    threshold_metrics,
)
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

FOLDS = ("valid", "test")
PREDICTION_PREFIX = prediction_header("")
FIXED_THRESHOLD = 0.5
COUNT_NAMES = ("tp", "fp", "tn", "fn")
GROUP_COLUMNS = ["task", "checkpoint", "split"]
PER_INSTANCE_COLUMNS = [*GROUP_COLUMNS, "instance", "metric", "value"]
SUMMARY_COLUMNS = [*GROUP_COLUMNS, "metric", "mean", "sd", "n_instances"]
METRICS_FILE_KEYS = ("task", "checkpoint", "split", "instance", "metrics")


# ---------------------------------------------------------------------------------------------------
# Reading a predictions table


def _require_columns(predictions: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in ["fold", *columns] if column not in predictions.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}")


def _fold(predictions: pd.DataFrame, fold: str) -> pd.DataFrame:
    unknown = sorted(set(predictions["fold"].astype(str)) - set(FOLDS))
    if unknown:
        raise InputError(f"column 'fold': unknown value '{unknown[0]}' (expected {' or '.join(FOLDS)})")
    rows = predictions[predictions["fold"].astype(str) == fold]
    if rows.empty:
        raise InputError(f"no rows of the {fold} fold")
    return rows


def _numbers(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The columns as a float matrix (n, columns); empty cells are NaN."""
    parsed_columns = []
    for column in columns:
        parsed = pd.to_numeric(rows[column], errors="coerce")
        bad = rows[column][parsed.isna() & rows[column].notna()]
        if len(bad):
            raise InputError(f"column '{column}': not a number: '{bad.iloc[0]}'")
        parsed_columns.append(parsed.to_numpy(dtype=float))
    return np.column_stack(parsed_columns)


def _predictions(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = _numbers(rows, columns)
    for position, column in enumerate(columns):
        if np.isnan(values[:, position]).any():
            raise InputError(f"column '{column}': missing prediction")
    return values


def _probabilities(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = _predictions(rows, columns)
    for position, column in enumerate(columns):
        if ((values[:, position] < 0) | (values[:, position] > 1)).any():
            raise InputError(f"column '{column}': probabilities must lie in [0, 1]")
    return values


def _binary_labels(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    values = _numbers(rows, columns)
    for position, column in enumerate(columns):
        other = np.setdiff1d(values[:, position][~np.isnan(values[:, position])], (0.0, 1.0))
        if len(other):
            raise InputError(f"column '{column}': binary labels must be 0 or 1, got {other[0]:g}")
    return values


def _class_indices(values: pd.Series, classes: Sequence[str]) -> np.ndarray:
    """Class indices of the true classes (NaN for missing), matching class names as text.

    Numbers match by value too, since a class '1' may come back from a CSV as 1.0.
    """
    by_name = {name: index for index, name in enumerate(classes)}
    by_number = {_as_number(name): index for index, name in enumerate(classes) if _as_number(name) is not None}
    indices = np.full(len(values), np.nan)
    for row, value in enumerate(values):
        if pd.isna(value):
            continue
        text = str(value).strip()
        index = by_name.get(text, by_number.get(_as_number(text)))
        if index is None:
            raise InputError(f"column '{values.name}': class '{text}' has no {PREDICTION_PREFIX}<class> column (classes: {', '.join(classes)})")
        indices[row] = index
    return indices


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------------
# Metrics per task type

# Probabilities are clipped this far from 0 and 1 before their logit, so that a saturated prediction stays finite.
LOGIT_CLIP = 1e-7
# The metric that shows whether a model's test predictions vary at all (chemlm.report flags those that barely do).
SPREAD = "prediction_spread"


def logit_spread(probabilities: np.ndarray) -> float:
    """The sd over molecules of each column's logit (binary and multi-label probabilities), mean over columns."""
    clipped = np.clip(probabilities, LOGIT_CLIP, 1 - LOGIT_CLIP)
    return float(np.mean(np.std(np.log(clipped) - np.log1p(-clipped), axis=0)))


def log_probability_spread(probabilities: np.ndarray) -> float:
    """The sd over molecules of each class's log-probability (multi-class), mean over classes."""
    return float(np.mean(np.std(np.log(np.clip(probabilities, LOGIT_CLIP, 1.0)), axis=0)))


def relative_spread(truths: np.ndarray, predictions: np.ndarray) -> float:
    """The sd of the predictions over the sd of the true values, per label on its labelled molecules, mean over labels
    (regression); NaN where the true values do not vary."""
    ratios = []
    for column in range(truths.shape[1]):
        present = ~np.isnan(truths[:, column])
        truth_sd = float(np.std(truths[present, column]))
        ratios.append(float(np.std(predictions[present, column])) / truth_sd if truth_sd > 0 else math.nan)
    return float(np.mean(ratios))


def _threshold_entries(name: str, result: ThresholdMetrics) -> tuple[dict[str, float], dict[str, float]]:
    """The metrics@name entries and the confusion entry of one threshold."""
    counts = {count: getattr(result.confusion, count) if result.confusion else math.nan for count in COUNT_NAMES}
    metrics = {
        f"mcc@{name}": result.mcc,
        f"f1@{name}": result.f1,
        f"accuracy@{name}": result.accuracy,
        **{f"{count}@{name}": value for count, value in counts.items()},
    }
    return metrics, {"threshold": result.threshold, **counts}


def _evaluate_binary(predictions: pd.DataFrame, task: TaskSpec, bootstrap_samples: int, seed: int) -> dict[str, dict]:
    label = task.label_columns[0]
    columns = [label_header(label), prediction_header(label)]
    _require_columns(predictions, columns)
    valid, test = _fold(predictions, "valid"), _fold(predictions, "test")
    y_valid, y_test = (_binary_labels(rows, columns[:1])[:, 0] for rows in (valid, test))
    p_valid, p_test = (_probabilities(rows, columns[1:])[:, 0] for rows in (valid, test))
    context = f"test fold of label '{label}'"

    threshold = choose_threshold(y_valid, p_valid, context=f"valid fold of label '{label}'")
    fixed = binary_metrics(y_test, p_test, FIXED_THRESHOLD, context=context)
    at_threshold = {str(FIXED_THRESHOLD): fixed.at_threshold, "valid": threshold_metrics(y_test, p_test, threshold, context=context)}
    metrics = {"auroc": fixed.auroc, "auprc": fixed.auprc, "threshold@valid": threshold, SPREAD: logit_spread(p_test[:, None])}
    confusion = {}
    for name, result in at_threshold.items():
        metrics_at, confusion[name] = _threshold_entries(name, result)
        metrics.update(metrics_at)
    # One seed for both metrics: their intervals come from the same resamples.
    intervals = {
        name: list(bootstrap_interval(metric_fn, y_test, p_test, bootstrap_samples, seed, context=context))
        for name, metric_fn in (("auroc", auroc), ("auprc", auprc))
    } if bootstrap_samples else {}
    return {"metrics": metrics, "intervals": intervals, "confusion": confusion}


def _label_metrics(scores: dict[str, LabelScores], labels: Sequence[str], with_per_label: bool) -> dict[str, float]:
    """Means under the plain names, then `name[label]` per label when asked for."""
    metrics = {name: label_scores.mean for name, label_scores in scores.items()}
    if with_per_label:
        for label in labels:
            metrics.update({f"{name}[{label}]": label_scores.by_label[label] for name, label_scores in scores.items()})
    return metrics


def _evaluate_multilabel(predictions: pd.DataFrame, task: TaskSpec) -> dict[str, float]:
    labels = task.label_columns
    truth_columns, prediction_columns = [label_header(label) for label in labels], [prediction_header(label) for label in labels]
    _require_columns(predictions, truth_columns + prediction_columns)
    test = _fold(predictions, "test")
    probabilities = _probabilities(test, prediction_columns)
    scores = multilabel_metrics(_binary_labels(test, truth_columns), probabilities, labels, context="test fold")
    return {**_label_metrics(scores, labels, with_per_label=True), SPREAD: logit_spread(probabilities)}


def _evaluate_regression(predictions: pd.DataFrame, task: TaskSpec) -> dict[str, float]:
    labels = task.label_columns
    truth_columns, prediction_columns = [label_header(label) for label in labels], [prediction_header(label) for label in labels]
    _require_columns(predictions, truth_columns + prediction_columns)
    test = _fold(predictions, "test")
    truths, predicted = _numbers(test, truth_columns), _predictions(test, prediction_columns)
    scores = regression_metrics(truths, predicted, labels, context="test fold")
    return {**_label_metrics(scores, labels, with_per_label=len(labels) > 1), SPREAD: relative_spread(truths, predicted)}


def _evaluate_multiclass(predictions: pd.DataFrame, task: TaskSpec) -> tuple[dict[str, float], dict[str, Any]]:
    """The test fold's metrics (chemlm.metrics.MulticlassMetrics, per class as `<metric>[<class>]`) and its
    confusion matrix (`classes`, `matrix` with true classes as rows, `support`)."""
    truth_column = label_header(task.label_columns[0])
    prediction_columns = [column for column in predictions.columns if column.startswith(PREDICTION_PREFIX)]
    _require_columns(predictions, [truth_column])
    if len(prediction_columns) < 2:
        raise InputError(f"a multiclass predictions file needs a {PREDICTION_PREFIX}<class> column per class, found {len(prediction_columns)}")
    classes = [column.removeprefix(PREDICTION_PREFIX) for column in prediction_columns]
    test = _fold(predictions, "test")
    probabilities = _probabilities(test, prediction_columns)
    result = multiclass_metrics(
        _class_indices(test[truth_column], classes),
        probabilities,
        classes,
        context=f"test fold of label '{task.label_columns[0]}'",
    )
    metrics = {
        "accuracy": result.accuracy,
        "balanced_accuracy": result.balanced_accuracy,
        "macro_f1": result.macro_f1,
        "auroc": result.macro_auroc,
        **{f"{metric}[{name}]": value for metric, by_class in (("accuracy", result.accuracy_by_class), ("f1", result.f1_by_class),
                                                              ("auroc", result.auroc_by_class)) for name, value in by_class.items()},
        SPREAD: log_probability_spread(probabilities),
    }
    return metrics, {"classes": classes, "matrix": result.confusion, "support": result.support}


def evaluate_predictions(predictions: pd.DataFrame, task: TaskSpec, bootstrap_samples: int, seed: int) -> dict[str, dict]:
    """The "metrics", "intervals" and "confusion" parts of a metrics file (design item 6).

    `predictions` is a predictions table (design item 5). Binary tasks get AUROC and AUPRC with
    `bootstrap_samples` percentile-bootstrap intervals (0: no intervals) and threshold metrics at 0.5
    and at the validation fold's MCC-optimal threshold; multi-class tasks the test fold's confusion matrix; the other
    types get no intervals or confusion.
    """
    if bootstrap_samples < 0:
        raise InputError(f"bootstrap samples must be 0 or more, got {bootstrap_samples}")
    if task.type is TaskType.BINARY:
        return _evaluate_binary(predictions, task, bootstrap_samples, seed)
    if task.type is TaskType.MULTICLASS:
        metrics, confusion = _evaluate_multiclass(predictions, task)
        return {"metrics": metrics, "intervals": {}, "confusion": confusion}
    evaluate_by_type = {TaskType.MULTILABEL: _evaluate_multilabel, TaskType.REGRESSION: _evaluate_regression}
    return {"metrics": evaluate_by_type[task.type](predictions, task), "intervals": {}, "confusion": {}}


def _json_ready(value: Any) -> Any:
    """`value` with NaN and infinities as None (JSON null) and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_metrics(
    predictions_csv: str | Path,
    out_json: str | Path,
    task: TaskSpec,
    checkpoint: str,
    split: str,
    instance: str,
    seed: int,
    bootstrap_samples: int,
) -> None:
    """Evaluate a predictions file and write its metrics file (design item 6)."""
    # Class names are text: read them as written ("01" stays "01").
    text_columns = {label_header(task.label_columns[0]): str} if task.type is TaskType.MULTICLASS else {}
    predictions = read_csv(predictions_csv, dtype={"mol_id": str, "fold": str, **text_columns})
    try:
        parts = evaluate_predictions(predictions, task, bootstrap_samples, seed)
    except InputError as error:
        raise InputError(f"{predictions_csv}: {error}") from None
    record = _json_ready(
        {"task": task.name, "checkpoint": checkpoint, "split": split, "instance": instance, "seed": seed, "type": task.type.value,
         **parts}
    )
    write_json(record, out_json)
    undefined = [name for name, value in record["metrics"].items() if value is None]
    logger.info(
        "%s / %s / %s / %s: %d metrics%s",
        task.name, checkpoint, split, instance, len(record["metrics"]),
        f", undefined: {', '.join(undefined)}" if undefined else "",
    )


# ---------------------------------------------------------------------------------------------------
# Summary over split instances


def _read_metrics_file(path: Path) -> dict[str, Any]:
    try:
        record = read_json(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    missing = [key for key in METRICS_FILE_KEYS if not isinstance(record, dict) or key not in record]
    if missing:
        raise InputError(f"{path}: not a metrics file (missing {', '.join(missing)})")
    return record


def summarize(metric_files: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-instance long table and the summary over split instances of all metrics files (design item 7).

    mean and sd (sample sd, ddof=1: NaN with one instance) are taken over the split instances where the metric is
    defined, and n_instances counts them. Rows are sorted by task, checkpoint and split (per instance: and the
    instance, by its numbers); metrics keep the order in which they first appear.
    """
    if not metric_files:
        raise InputError("no metrics files to summarize")
    rows = []
    for path in map(Path, metric_files):
        record = _read_metrics_file(path)
        group = {"task": str(record["task"]), "checkpoint": str(record["checkpoint"]), "split": str(record["split"]), "instance": str(record["instance"])}
        rows += [{**group, "metric": name, "value": math.nan if value is None else float(value)} for name, value in record["metrics"].items()]
    per_seed = pd.DataFrame(rows, columns=PER_INSTANCE_COLUMNS)
    repeated = per_seed[per_seed.duplicated(["task", "checkpoint", "split", "instance", "metric"])]
    if len(repeated):
        first = repeated.iloc[0]
        raise InputError(f"metric '{first.metric}' of {first.task} / {first.checkpoint} / {first.split} / {first.instance} appears in two metrics files")

    metric_rank = {name: rank for rank, name in enumerate(dict.fromkeys(per_seed["metric"]))}
    per_seed = _sorted(per_seed, [*GROUP_COLUMNS, "instance"], metric_rank)
    summary = (
        per_seed.groupby([*GROUP_COLUMNS, "metric"], sort=False)["value"]
        .agg(mean="mean", sd="std", n_instances="count")  # pandas skips NaN; std is ddof=1
        .reset_index()
    )
    summary = _sorted(summary, GROUP_COLUMNS, metric_rank)[SUMMARY_COLUMNS]
    return per_seed, summary


def _sorted(table: pd.DataFrame, by: list[str], metric_rank: dict[str, int]) -> pd.DataFrame:
    """`table` sorted by `by` (a split instance by its numbers: seed2 before seed10), then metrics in first-seen order."""
    keys = {column: f"{column}_key" if column == "instance" else column for column in by}
    extra = {"metric_rank": table["metric"].map(metric_rank)}
    if "instance" in by:
        extra["instance_key"] = table["instance"].map(instance_order)
    return (
        table.assign(**extra)
        .sort_values([*keys.values(), "metric_rank"], kind="stable")
        .drop(columns=list(extra))
        .reset_index(drop=True)
    )


def instance_order(name: str) -> tuple:
    """A split instance's name as its numbers (seed2 -> (2,), repeat1-fold3 -> (1, 3)), so that they sort as numbers."""
    return tuple(int(number) for number in re.findall(r"\d+", name))


def write_summary(metric_files: Sequence[str | Path], per_seed_csv: str | Path, summary_csv: str | Path) -> None:
    per_seed, summary = summarize(metric_files)
    write_csv(per_seed, per_seed_csv)
    write_csv(summary, summary_csv)
    logger.info("%d metrics files: %d values (one per split instance), %d summary rows", len(metric_files), len(per_seed), len(summary))
