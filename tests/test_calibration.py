"""Calibration: fitted on validation predictions only, both methods, identity where undefined; the scores that
say how well calibrated probabilities are."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chemlm.calibration import (
    apply,
    brier_score,
    expected_calibration_error,
    fit,
    fit_predictions,
    reliability,
)
from chemlm.tasks import TaskSpec, TaskType

BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from true probabilities, and predictions pushed towards 0 and 1 (as class-weighted and
    overfitted models make them)."""
    rng = np.random.default_rng(seed)
    truth_p = rng.uniform(0.02, 0.6, n)
    y = (rng.random(n) < truth_p).astype(float)
    logit = np.log(truth_p / (1 - truth_p))
    return y, 1 / (1 + np.exp(-(3 * logit + 2)))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fitted_on_validation_improves_held_out_probabilities(method):
    y_valid, p_valid = overconfident(4000, 0)
    y_test, p_test = overconfident(4000, 1)
    calibration = fit(["y"], y_valid[:, None], p_valid[:, None])
    calibrated = apply(calibration, method, ["y"], p_test[:, None])[:, 0]
    assert brier_score(y_test, calibrated) < brier_score(y_test, p_test) - 0.01
    assert expected_calibration_error(y_test, calibrated) < 0.5 * expected_calibration_error(y_test, p_test)
    assert ((calibrated >= 0) & (calibrated <= 1)).all()


def test_calibration_never_sees_test_labels():
    """Poisoned test labels (every one flipped) give the same calibration: only validation rows are used."""
    y, p = overconfident(600, 2)
    table = pd.DataFrame({"mol_id": [str(i) for i in range(600)], "fold": np.where(np.arange(600) < 300, "valid", "test"),
                          "y:y": y, "p:y": p})
    poisoned = table.assign(**{"y:y": np.where(table["fold"] == "test", 1 - table["y:y"], table["y:y"])})
    assert json.dumps(fit_predictions(table, BINARY)) == json.dumps(fit_predictions(poisoned, BINARY))


def test_a_label_with_one_validation_class_is_left_as_it_is():
    multilabel = TaskSpec("t", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
    y = np.column_stack([np.r_[np.zeros(50), np.ones(50)], np.zeros(100)])
    p = np.column_stack([np.linspace(0.1, 0.9, 100), np.linspace(0.2, 0.4, 100)])
    calibration = fit(multilabel.label_columns, y, p)
    assert "one class" in calibration["labels"]["b"]["skipped"] and "platt" in calibration["labels"]["a"]
    for method in ("platt", "isotonic"):
        np.testing.assert_array_equal(apply(calibration, method, ["a", "b"], p)[:, 1], p[:, 1])
    regression = TaskSpec("t", "-", "smiles", ("v",), TaskType.REGRESSION)
    assert fit_predictions(pd.DataFrame({"fold": ["valid"], "y:v": [1.0], "p:v": [1.1]}), regression)["labels"] == {}


def test_reliability_and_expected_calibration_error():
    rng = np.random.default_rng(3)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(float)  # calibrated by construction
    assert expected_calibration_error(y, p) < 0.01
    predicted, observed, counts = reliability(y, p)
    assert counts.sum() == 200_000 and np.allclose(predicted, observed, atol=0.01)
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    assert brier_score(np.array([1.0, 0.0, np.nan]), np.array([1.0, 0.5, 0.3])) == pytest.approx(0.125)
