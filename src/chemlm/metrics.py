"""Metrics per task type, bootstrap intervals and the validation threshold: pure functions on arrays.

Inputs are numpy arrays. True labels are floats with NaN for a missing label (multi-class: class indices,
NaN allowed); predictions are probabilities (classification) or values (regression), never logits.
Missing labels are left out label by label; a NaN prediction is an error.

An undefined metric (AUROC of data with one class, Pearson r of constant values, ...) is NaN and a
logged warning that names the data through `context` (e.g. "test fold of label 'HIV_active'"), never
an exception. `context=None` logs nothing: for callers that report an undefined score themselves, like
the training loop, which calls `validation_score` every epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import confusion_matrix

from chemlm.io import InputError
from chemlm.tasks import TaskType

logger = logging.getLogger(__name__)

# A bootstrap interval is NaN when more resamples than this fraction had one class only: the interval
# of the remaining resamples would describe data conditioned on containing both classes, which is
# overly narrow for folds with a handful of positives.
MAX_SKIPPED_FRACTION = 0.1
# Thresholds whose validation MCC differs by less than this count as tied (float rounding only).
MCC_TIE_TOLERANCE = 1e-12

BinaryMetricFn = Callable[[np.ndarray, np.ndarray], float]

HIGHER_IS_BETTER: dict[TaskType, bool] = {
    TaskType.BINARY: True,  # AUROC
    TaskType.MULTILABEL: True,  # mean AUROC over labels
    TaskType.MULTICLASS: True,  # macro-F1
    TaskType.REGRESSION: False,  # mean RMSE over labels
}


def _undefined(metric: str, reason: str, context: str | None) -> float:
    """NaN for a metric that does not exist on this data, with a warning saying why."""
    if context is not None:
        logger.warning("%s undefined: %s %s", metric, context, reason)
    return math.nan


# ---------------------------------------------------------------------------------------------------
# Input shapes


def _vector(values: np.ndarray, name: str) -> np.ndarray:
    """A float vector; a single column (n, 1) counts as a vector."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"{name}: expected shape (n,) or (n, 1), got {array.shape}")
    return array


def _matrix(values: np.ndarray, name: str) -> np.ndarray:
    """A float matrix (n, labels); a vector counts as one label."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name}: expected shape (n, labels), got {array.shape}")
    return array


def _check_predictions(predictions: np.ndarray, n_rows: int) -> None:
    if len(predictions) != n_rows:
        raise InputError(f"predictions have {len(predictions)} rows, true labels {n_rows}")
    if np.isnan(predictions).any():
        raise InputError("predictions contain NaN")


def _observed(y_true: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries whose true label is not missing."""
    _check_predictions(predictions, len(y_true))
    observed = ~np.isnan(y_true)
    return y_true[observed], predictions[observed]


def _binary_arrays(y_true: np.ndarray, p_positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = _observed(_vector(y_true, "y_true"), _vector(p_positive, "p_positive"))
    if not np.isin(y, (0.0, 1.0)).all():
        raise InputError(f"binary labels must be 0 or 1, got {np.setdiff1d(y, (0.0, 1.0))[:3].tolist()}")
    return y, p


def _class_problem(y: np.ndarray) -> str | None:
    """Why ranking metrics are undefined on binary labels `y`, or None when both classes are present."""
    if len(y) == 0:
        return "has no labelled molecules"
    if not ((y == 1).any() and (y == 0).any()):
        return "has only one class"
    return None


# ---------------------------------------------------------------------------------------------------
# Binary


@dataclass(frozen=True)
class ConfusionCounts:
    """Confusion matrix at a threshold; positive class = 1, predicted positive when p >= threshold."""

    tp: int
    fp: int
    tn: int
    fn: int


@dataclass(frozen=True)
class ThresholdMetrics:
    """Metrics of the 0/1 predictions at one threshold. All NaN (and no counts) for a NaN threshold."""

    threshold: float
    mcc: float
    f1: float
    accuracy: float
    confusion: ConfusionCounts | None


@dataclass(frozen=True)
class BinaryMetrics:
    auroc: float
    auprc: float
    at_threshold: ThresholdMetrics


def _cumulative_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives when predicting positive for p >= each distinct p, highest p first.

    AUROC and AUPRC from these equal scikit-learn's roc_auc_score and average_precision_score (ties
    included; the tests check it) at a fraction of the cost, which matters for bootstrap intervals.
    """
    order = np.argsort(-p, kind="stable")
    p_sorted = p[order]
    last_of_each_value = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tps = np.cumsum(y[order])[last_of_each_value]
    return tps, last_of_each_value + 1 - tps


def auroc(y_true: np.ndarray, p_positive: np.ndarray, *, context: str | None = "the data") -> float:
    y, p = _binary_arrays(y_true, p_positive)
    problem = _class_problem(y)
    if problem:
        return _undefined("AUROC", problem, context)
    tps, fps = _cumulative_counts(y, p)
    return float(np.trapezoid(np.r_[0, tps] / tps[-1], np.r_[0, fps] / fps[-1]))


def auprc(y_true: np.ndarray, p_positive: np.ndarray, *, context: str | None = "the data") -> float:
    """Average precision: precision at each threshold weighted by the recall it adds. Undefined with one
    class, like AUROC: with positives only it is trivially 1."""
    y, p = _binary_arrays(y_true, p_positive)
    problem = _class_problem(y)
    if problem:
        return _undefined("AUPRC", problem, context)
    tps, fps = _cumulative_counts(y, p)
    return float(np.sum(np.diff(np.r_[0, tps]) / tps[-1] * tps / (tps + fps)))


def _mcc(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """MCC from confusion counts (vectorised). 0 where a predicted class is empty: a constant
    predictor has no skill (scikit-learn's convention)."""
    tp, fp, tn, fn = (np.asarray(count, dtype=float) for count in (tp, fp, tn, fn))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        mcc = (tp * tn - fp * fn) / denominator
    return np.where(denominator > 0, mcc, 0.0)


def threshold_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, threshold: float, *, context: str | None = "the data"
) -> ThresholdMetrics:
    """MCC, F1, accuracy and the confusion matrix when predicting positive for p >= `threshold`."""
    y, p = _binary_arrays(y_true, p_positive)
    if math.isnan(threshold):
        return ThresholdMetrics(math.nan, math.nan, math.nan, math.nan, None)
    predicted, actual = p >= threshold, y == 1
    counts = ConfusionCounts(
        tp=int(np.sum(predicted & actual)),
        fp=int(np.sum(predicted & ~actual)),
        tn=int(np.sum(~predicted & ~actual)),
        fn=int(np.sum(~predicted & actual)),
    )
    where = f"{context} at threshold {threshold:.4g}" if context is not None else None
    accuracy = (counts.tp + counts.tn) / len(y) if len(y) else _undefined("accuracy", "has no labelled molecules", where)
    f1_denominator = 2 * counts.tp + counts.fp + counts.fn
    f1 = 2 * counts.tp / f1_denominator if f1_denominator else _undefined("F1", "has no positives, true or predicted", where)
    # With one true class MCC's denominator is 0 whatever the model does: undefined, not "no skill".
    problem = _class_problem(y)
    mcc = _undefined("MCC", problem, where) if problem else float(_mcc(counts.tp, counts.fp, counts.tn, counts.fn))
    return ThresholdMetrics(float(threshold), mcc, float(f1), float(accuracy), counts)


def binary_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, threshold: float, *, context: str | None = "the data"
) -> BinaryMetrics:
    """AUROC, AUPRC (average precision) and the metrics at `threshold`."""
    return BinaryMetrics(
        auroc=auroc(y_true, p_positive, context=context),
        auprc=auprc(y_true, p_positive, context=context),
        at_threshold=threshold_metrics(y_true, p_positive, threshold, context=context),
    )


def choose_threshold(y_valid: np.ndarray, p_valid: np.ndarray, *, context: str | None = "the validation fold") -> float:
    """The threshold that maximises MCC on the validation fold; ties go to the smallest threshold.

    MCC rather than accuracy or F1: it uses all four cells of the confusion matrix and stays informative
    under heavy class imbalance (MoleculeNet's HIV has ~3.5 % positives), where accuracy rewards
    predicting everything negative and F1 ignores true negatives. Candidates are the unique predicted
    probabilities (predicting positive for p >= threshold), which covers every distinct confusion matrix.
    NaN when the validation fold has one class.
    """
    y, p = _binary_arrays(y_valid, p_valid)
    problem = _class_problem(y)
    if problem:
        return _undefined("MCC-optimal threshold", problem, context)
    candidates = np.unique(p)  # ascending
    positives, negatives = np.sort(p[y == 1]), np.sort(p[y == 0])
    # Counts of each class with p >= candidate, for all candidates at once.
    tp = len(positives) - np.searchsorted(positives, candidates, side="left")
    fp = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    mcc = _mcc(tp, fp, len(negatives) - fp, len(positives) - tp)
    best = np.flatnonzero(mcc >= mcc.max() - MCC_TIE_TOLERANCE)[0]
    return float(candidates[best])


def bootstrap_interval(
    metric_fn: BinaryMetricFn,
    y_true: np.ndarray,
    p: np.ndarray,
    n_samples: int,
    seed: int,
    level: float = 0.95,
    *,
    context: str | None = "the data",
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric_fn(y, p)` over molecules (binary labels).

    Resamples with one class only are skipped; if more than MAX_SKIPPED_FRACTION of them are, the
    interval is (NaN, NaN). The same `seed` draws the same resamples, so intervals of different metrics
    on the same predictions are paired.
    """
    if n_samples < 1:
        raise InputError(f"bootstrap samples must be at least 1, got {n_samples}")
    if not 0 < level < 1:
        raise InputError(f"interval level must be between 0 and 1, got {level}")
    y, p = _binary_arrays(y_true, p)
    problem = _class_problem(y)
    if problem:
        _undefined("bootstrap interval", problem, context)
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for _ in range(n_samples):
        index = rng.integers(0, len(y), size=len(y))
        if _class_problem(y[index]) is None:
            values.append(metric_fn(y[index], p[index]))
    skipped = n_samples - len(values)
    if skipped > MAX_SKIPPED_FRACTION * n_samples:
        _undefined("bootstrap interval", f"has too few of one class: {skipped} of {n_samples} resamples had one class only", context)
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------------
# Several labels


@dataclass(frozen=True)
class LabelScores:
    """One metric for each label, and their mean over the labels where it is defined."""

    by_label: dict[str, float]

    @property
    def mean(self) -> float:
        defined = [value for value in self.by_label.values() if not math.isnan(value)]
        return float(np.mean(defined)) if defined else math.nan


def _label_context(context: str | None, label: str) -> str | None:
    return None if context is None else f"{context} of label '{label}'"


def per_label(
    metric_fn: Callable[..., float],
    y_true: np.ndarray,
    predictions: np.ndarray,
    labels: Sequence[str],
    *,
    context: str | None = "the data",
) -> LabelScores:
    """`metric_fn(y, prediction, context=...)` for each column (label) of (n, labels) arrays."""
    y, predicted = _matrix(y_true, "y_true"), _matrix(predictions, "predictions")
    if y.shape != predicted.shape or y.shape[1] != len(labels):
        raise InputError(f"true labels {y.shape}, predictions {predicted.shape} and {len(labels)} label names disagree")
    return LabelScores(
        {
            label: metric_fn(y[:, column], predicted[:, column], context=_label_context(context, label))
            for column, label in enumerate(labels)
        }
    )


def multilabel_metrics(
    y_true: np.ndarray, p_positive: np.ndarray, labels: Sequence[str], *, context: str | None = "the data"
) -> dict[str, LabelScores]:
    """AUROC and AUPRC of each label on its non-missing entries; `.mean` over the labels where defined."""
    return {
        "auroc": per_label(auroc, y_true, p_positive, labels, context=context),
        "auprc": per_label(auprc, y_true, p_positive, labels, context=context),
    }


# ---------------------------------------------------------------------------------------------------
# Multi-class


@dataclass(frozen=True)
class MulticlassMetrics:
    """How a multi-class model scores as the field reports it: accuracy of the most probable class, balanced accuracy
    (mean recall over the classes present), macro-F1 (mean F1 over the classes present in the true or the predicted
    classes, as scikit-learn's), and per class, that class against the rest: accuracy, F1 and AUROC (their mean over
    the classes where defined is `macro_auroc`). A class too rare for a metric in the data (no true molecule: no
    AUROC; neither true nor predicted: no F1) has NaN there, with a logged warning naming it. `confusion[i][j]` counts
    the molecules of class i predicted as class j; `support` the molecules of each class."""

    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    macro_auroc: float
    f1_by_class: dict[str, float]
    accuracy_by_class: dict[str, float]
    auroc_by_class: dict[str, float]
    confusion: list[list[int]]
    support: dict[str, int]


def multiclass_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str], *, context: str | None = "the data"
) -> MulticlassMetrics:
    """`y_true`: class indices (n,) into `classes`, NaN for missing; `probabilities`: (n, classes)."""
    y = _vector(y_true, "y_true")
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise InputError(f"probabilities: expected shape (n, {len(classes)}), got {probabilities.shape}")
    y, probabilities = _observed(y, probabilities)
    if not (np.isin(y, np.arange(len(classes)))).all():
        raise InputError(f"class indices must be integers in 0..{len(classes) - 1}, got {np.setdiff1d(y, np.arange(len(classes)))[:3].tolist()}")
    y = y.astype(int)
    predicted = probabilities.argmax(axis=1) if len(y) else y
    matrix = confusion_matrix(y, predicted, labels=np.arange(len(classes)))
    support = matrix.sum(axis=1)
    tp = np.diag(matrix)
    denominator = 2 * tp + (matrix.sum(axis=0) - tp) + (support - tp)  # 2tp + fp + fn
    f1_by_class = {
        name: float(2 * tp[k] / denominator[k])
        if denominator[k]
        else _undefined(f"F1 of class '{name}'", "has it neither as true nor as predicted class", context)
        for k, name in enumerate(classes)
    }
    n = len(y)
    if n == 0:
        _undefined("accuracy", "has no labelled molecules", context)
    # one against the rest: a molecule is right when it is and is predicted the class, or is not and is not predicted it
    correct_by_class = n - (matrix.sum(axis=0) - tp) - (support - tp)
    auroc_by_class = {
        name: auroc((y == k).astype(float), probabilities[:, k], context=None if context is None else f"{context}, class '{name}' against the rest")
        for k, name in enumerate(classes)
    }
    return MulticlassMetrics(
        accuracy=float(np.mean(predicted == y)) if n else math.nan,
        balanced_accuracy=float(np.mean(tp[support > 0] / support[support > 0])) if n else math.nan,
        macro_f1=LabelScores(f1_by_class).mean,
        macro_auroc=LabelScores(auroc_by_class).mean,
        f1_by_class=f1_by_class,
        accuracy_by_class={name: float(correct_by_class[k] / n) if n else math.nan for k, name in enumerate(classes)},
        auroc_by_class=auroc_by_class,
        confusion=matrix.astype(int).tolist(),
        support={name: int(count) for name, count in zip(classes, support)},
    )


# ---------------------------------------------------------------------------------------------------
# Regression (one label; `per_label` for several)


def _regression_arrays(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _observed(_vector(y_true, "y_true"), _vector(y_pred, "y_pred"))


def rmse(y_true: np.ndarray, y_pred: np.ndarray, *, context: str | None = "the data") -> float:
    y, predicted = _regression_arrays(y_true, y_pred)
    if len(y) == 0:
        return _undefined("RMSE", "has no labelled molecules", context)
    return float(np.sqrt(np.mean((predicted - y) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray, *, context: str | None = "the data") -> float:
    y, predicted = _regression_arrays(y_true, y_pred)
    if len(y) == 0:
        return _undefined("MAE", "has no labelled molecules", context)
    return float(np.mean(np.abs(predicted - y)))


def r2(y_true: np.ndarray, y_pred: np.ndarray, *, context: str | None = "the data") -> float:
    """Coefficient of determination 1 - SS_res / SS_tot; undefined for constant true values."""
    y, predicted = _regression_arrays(y_true, y_pred)
    total = np.sum((y - y.mean()) ** 2) if len(y) else 0.0
    if len(y) < 2 or total == 0:
        return _undefined("R2", "has fewer than two distinct true values", context)
    return float(1 - np.sum((y - predicted) ** 2) / total)


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray, *, context: str | None = "the data") -> float:
    y, predicted = _regression_arrays(y_true, y_pred)
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(predicted) == 0:
        return _undefined("Pearson r", "has fewer than two distinct true or predicted values", context)
    return float(stats.pearsonr(y, predicted).statistic)


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], *, context: str | None = "the data"
) -> dict[str, LabelScores]:
    """RMSE, MAE, R2 and Pearson r of each label on its non-missing entries; `.mean` over labels."""
    return {
        name: per_label(metric_fn, y_true, y_pred, labels, context=context)
        for name, metric_fn in (("rmse", rmse), ("mae", mae), ("r2", r2), ("pearson_r", pearson_r))
    }


# ---------------------------------------------------------------------------------------------------
# Early stopping


def validation_score(task_type: TaskType, y_true: np.ndarray, predictions: np.ndarray) -> float:
    """The score the fine-tuning loop monitors; `HIGHER_IS_BETTER[task_type]` says which way is better.

    `y_true`: float (n, labels) with NaN for missing (binary also (n,)); multi-class: class indices (n,).
    `predictions`: binary p(positive) (n,) or (n, 1); multi-label p(positive) (n, labels); multi-class
    class probabilities (n, classes); regression values (n, labels) in the labels' units.
    Binary -> AUROC, multi-label -> mean AUROC over labels, multi-class -> macro-F1, regression -> mean
    RMSE over labels. NaN when undefined; logs nothing (it runs every epoch).
    """
    task_type = TaskType(task_type)
    if task_type is TaskType.BINARY:
        return auroc(y_true, predictions, context=None)
    if task_type is TaskType.MULTICLASS:
        probabilities = np.asarray(predictions, dtype=float)
        classes = [str(k) for k in range(probabilities.shape[-1])]
        return multiclass_metrics(y_true, probabilities, classes, context=None).macro_f1
    predicted = _matrix(predictions, "predictions")
    labels = [str(column) for column in range(predicted.shape[1])]
    metric_fn = auroc if task_type is TaskType.MULTILABEL else rmse
    return per_label(metric_fn, y_true, predicted, labels, context=None).mean
