"""Calibrated probabilities for binary and multi-label tasks, fitted on a validation fold only, never on test.

Both methods are fitted per label: Platt scaling (a logistic regression on the logit of the predicted probability)
and isotonic regression (a monotone step function). Platt scaling is regularised as Platt (1999) and scikit-learn's
sigmoid calibration are: its targets are smoothed to (N+ + 1) / (N+ + 2) for positives and 1 / (N- + 2) for
negatives, so a validation fold whose few positives score highest gives a finite slope, not a step from 0 to 1.
A calibration is plain JSON that needs neither scikit-learn nor the model to apply: the slope and intercept, or the
isotonic regression's knots. Fine-tuning saves it in the model
folder (config `chemlm_calibration`) and beside it (calibration.json); a label whose validation fold holds one class
only is left as it is (identity), with the reason. Also the numbers that say how well calibrated probabilities are:
Brier score, expected calibration error and the reliability diagram's bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

METHODS = ("platt", "isotonic")
CALIBRATED_TYPES = (TaskType.BINARY, TaskType.MULTILABEL)
EPSILON = 1e-6  # probabilities are clipped to [EPSILON, 1 - EPSILON] before their logit is taken
RELIABILITY_BINS = 10


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z|."""
    return np.exp(-np.logaddexp(0, -np.asarray(z, dtype=float)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p))


def platt_scaling(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of P(y = 1) = sigmoid(slope * score + intercept) fitted to Platt's smoothed targets by
    L-BFGS, as scikit-learn's sigmoid calibration fits them."""
    from scipy.optimize import minimize

    positives = float(y.sum())
    negatives = len(y) - positives
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss_and_gradient(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        z = parameters[0] * scores + parameters[1]
        residual = sigmoid(z) - target
        return float(np.sum(np.logaddexp(0, z) - target * z)), np.array([residual @ scores, residual.sum()])

    start = np.array([0.0, np.log((positives + 1) / (negatives + 1))])
    result = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B", options={"gtol": 1e-6, "ftol": 64 * np.finfo(float).eps})
    return float(result.x[0]), float(result.x[1])


def fit_label(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Both calibrations of one label from its validation truths (0/1, NaN missing) and probabilities, or why not."""
    from sklearn.isotonic import IsotonicRegression

    present = ~np.isnan(y)
    y, p = y[present].astype(int), np.asarray(p, dtype=float)[present]
    if len(np.unique(y)) < 2:
        return {"skipped": f"{len(y)} labelled validation molecules of one class: left uncalibrated"}
    slope, intercept = platt_scaling(y, logit(p))
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return {
        "platt": {"slope": slope, "intercept": intercept},
        "isotonic": {"x": isotonic.X_thresholds_.tolist(), "y": isotonic.y_thresholds_.tolist()},
        "validation_molecules": int(len(y)),
    }


def fit(labels: Sequence[str], y_valid: np.ndarray, p_valid: np.ndarray) -> dict[str, Any]:
    """{"fitted_on": "valid", "labels": {label: fit_label(...)}} for (n, labels) truths and probabilities."""
    y_valid, p_valid = np.asarray(y_valid, dtype=float).reshape(len(y_valid), -1), np.asarray(p_valid, dtype=float).reshape(len(p_valid), -1)
    return {"fitted_on": "valid", "labels": {label: fit_label(y_valid[:, column], p_valid[:, column]) for column, label in enumerate(labels)}}


def apply_label(fitted: dict[str, Any], method: str, p: np.ndarray) -> np.ndarray:
    """One label's probabilities calibrated by `method` (unchanged where the label was left uncalibrated)."""
    if method not in METHODS:
        raise ValueError(f"calibration method '{method}': expected one of {', '.join(METHODS)}")
    p = np.asarray(p, dtype=float)
    if "skipped" in fitted:
        return p
    if method == "platt":
        return sigmoid(fitted["platt"]["slope"] * logit(p) + fitted["platt"]["intercept"])
    knots = fitted["isotonic"]
    return np.interp(p, knots["x"], knots["y"])


def apply(calibration: dict[str, Any], method: str, labels: Sequence[str], p: np.ndarray) -> np.ndarray:
    """(n, labels) probabilities calibrated label by label."""
    p = np.asarray(p, dtype=float).reshape(len(p), -1)
    return np.column_stack([apply_label(calibration["labels"][label], method, p[:, column]) for column, label in enumerate(labels)])


def brier_score(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference of probability and outcome over the labelled entries."""
    present = ~np.isnan(y)
    return float(np.mean((np.asarray(p)[present] - y[present]) ** 2)) if present.any() else float("nan")


def reliability(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width probability bin: mean predicted probability, observed positive rate and count (empty bins
    are NaN with count 0). Bins are (a, b] with 0 in the first, as scikit-learn's calibration_curve has them: isotonic
    outputs sit on bin edges, so the side matters."""
    present = ~np.isnan(y)
    y, p = y[present], np.asarray(p, dtype=float)[present]
    which = np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], p)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(which, weights=p, minlength=bins) / counts
        observed = np.bincount(which, weights=y, minlength=bins) / counts
    return predicted, observed, counts


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS) -> float:
    """The count-weighted mean gap between predicted probability and observed rate over the bins."""
    predicted, observed, counts = reliability(y, p, bins)
    filled = counts > 0
    return float(np.sum(counts[filled] * np.abs(predicted[filled] - observed[filled])) / counts.sum()) if counts.sum() else float("nan")


def fit_predictions(predictions: pd.DataFrame, task: TaskSpec) -> dict[str, Any]:
    """The calibration of a predictions table (docs/design.md, item 5), fitted on its validation rows alone."""
    if task.type not in CALIBRATED_TYPES:
        return {"fitted_on": "valid", "labels": {}, "not_calibrated": f"{task.type.value} tasks are not calibrated"}
    valid = predictions[predictions["fold"] == "valid"]
    truth = valid[[label_header(label) for label in task.label_columns]].to_numpy(dtype=float)
    scores = valid[[prediction_header(label) for label in task.label_columns]].to_numpy(dtype=float)
    return fit(task.label_columns, truth, scores)
