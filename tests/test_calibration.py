"""Calibration: fitted on validation predictions only, both methods, identity where undefined; the scores that
say how well calibrated probabilities are."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from chemlm.calibration import (
    apply,
    brier_score,
    expected_calibration_error,
    fit,
    fit_predictions,
    logit,
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


def sklearn_sigmoid(y_valid: np.ndarray, p_valid: np.ndarray, p_test: np.ndarray) -> np.ndarray:
    """scikit-learn's own sigmoid (Platt) calibration of a fitted classifier whose decision function is the logit
    of the given probabilities."""
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    class LogitScores(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.array([0, 1])
            return self

        def decision_function(self, X):
            return logit(np.asarray(X)[:, 0])

        def predict(self, X):
            return (self.decision_function(X) > 0).astype(int)

    frozen = FrozenEstimator(LogitScores().fit(p_valid[:, None], y_valid))
    calibrated = CalibratedClassifierCV(frozen, method="sigmoid", cv=2).fit(p_valid[:, None], y_valid.astype(int))
    return calibrated.predict_proba(p_test[:, None])[:, 1]


def separable_fold() -> tuple[np.ndarray, np.ndarray]:
    """100 validation molecules whose 3 positives score highest (the demo's fold has 6 positives)."""
    p = np.linspace(0.05, 0.6, 100)
    return (np.arange(100) >= 97).astype(float), p


def test_platt_scaling_on_a_separable_fold_is_regularised_as_scikit_learns():
    y, p = separable_fold()
    p_test = np.array([0.30, 0.55, 0.58, 0.60])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow
        calibrated = apply(fit(["y"], y[:, None], p[:, None]), "platt", ["y"], p_test[:, None])[:, 0]
    np.testing.assert_allclose(calibrated, sklearn_sigmoid(y, p, p_test), atol=1e-4)
    assert (calibrated > 0.001).all() and (calibrated < 0.5).all()  # not a step from 0 to 1


def test_platt_scaling_on_an_ordinary_fold_matches_scikit_learn():
    y_valid, p_valid = overconfident(500, 4)
    _, p_test = overconfident(200, 5)
    calibrated = apply(fit(["y"], y_valid[:, None], p_valid[:, None]), "platt", ["y"], p_test[:, None])[:, 0]
    np.testing.assert_allclose(calibrated, sklearn_sigmoid(y_valid, p_valid, p_test), atol=1e-4)


def test_reliability_bins_are_scikit_learns_on_bin_edges():
    """Isotonic outputs sit on bin edges (0.2, 0.5, ...): they fall in the bin below, as calibration_curve has it."""
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(6)
    p = rng.choice([0.0, 0.1, 0.2, 0.25, 0.5, 0.7, 0.8, 1.0], size=3000)
    y = (rng.random(3000) < p).astype(float)
    predicted, observed, counts = reliability(y, p)
    observed_sklearn, predicted_sklearn = calibration_curve(y, p, n_bins=10)
    filled = counts > 0
    np.testing.assert_allclose(predicted[filled], predicted_sklearn)
    np.testing.assert_allclose(observed[filled], observed_sklearn)
    edges = np.linspace(0, 1, 11)
    expected_counts = [np.sum((p > low) & (p <= high)) + (np.sum(p == 0) if low == 0 else 0) for low, high in zip(edges[:-1], edges[1:])]
    np.testing.assert_array_equal(counts, expected_counts)
    ece = np.sum(counts[filled] * np.abs(predicted_sklearn - observed_sklearn)) / counts.sum()
    assert expected_calibration_error(y, p) == pytest.approx(ece)
