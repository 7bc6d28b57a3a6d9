"""Metrics against hand computations; undefined metrics are NaN with a warning, never an error."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from chemlm.io import InputError
from chemlm.metrics import (
    HIGHER_IS_BETTER,
    ConfusionCounts,
    auprc,
    auroc,
    binary_metrics,
    bootstrap_interval,
    choose_threshold,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
    validation_score,
)
from chemlm.tasks import TaskType

# Ten molecules, four positives. Sorted by p: 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.55 N, 0.4 N, 0.3 P, 0.2 N, 0.1 N, 0.05 N.
Y10 = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=float)
P10 = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.55, 0.05])


def test_confusion_and_threshold_metrics_by_hand():
    # At 0.5: positives 0.9, 0.8, 0.6 predicted positive (tp=3), 0.3 not (fn=1);
    # negatives 0.7 and 0.55 predicted positive (fp=2), 0.4, 0.2, 0.1, 0.05 not (tn=4).
    # accuracy = (3 + 4) / 10 = 0.7
    # F1 = 2tp / (2tp + fp + fn) = 6 / 9 = 2/3
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (12 - 2) / sqrt(5*4*6*5) = 10 / sqrt(600)
    result = binary_metrics(Y10, P10, 0.5).at_threshold
    assert result.confusion == ConfusionCounts(tp=3, fp=2, tn=4, fn=1)
    assert result.threshold == 0.5
    assert result.accuracy == pytest.approx(0.7)
    assert result.f1 == pytest.approx(2 / 3)
    assert result.mcc == pytest.approx(10 / math.sqrt(600))


def test_probability_equal_to_threshold_is_positive():
    result = binary_metrics(Y10, P10, 0.6).at_threshold
    # p >= 0.6: 0.9, 0.8, 0.6 (positives) and 0.7 (negative)
    assert result.confusion == ConfusionCounts(tp=3, fp=1, tn=5, fn=1)


def test_auroc_and_auprc_by_hand():
    # AUROC = fraction of (positive, negative) pairs ranked correctly: the positives 0.9 and 0.8 beat all
    # 6 negatives, 0.6 beats 5 (not 0.7), 0.3 beats 3 (0.2, 0.1, 0.05): (6 + 6 + 5 + 3) / 24 = 5/6.
    # AUPRC (average precision) = mean precision at each positive's rank: ranks 1, 2, 4, 7 ->
    # (1/1 + 2/2 + 3/4 + 4/7) / 4.
    result = binary_metrics(Y10, P10, 0.5)
    assert result.auroc == pytest.approx(5 / 6)
    assert result.auprc == pytest.approx((1 + 1 + 0.75 + 4 / 7) / 4)


def test_auroc_and_auprc_match_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 7, 50, 300):
        y = np.r_[0.0, 1.0, (rng.random(n - 2) < 0.3).astype(float)]
        p = np.round(rng.random(n), 1)  # many tied probabilities
        assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert auprc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_missing_binary_labels_are_left_out():
    y = np.append(Y10, [np.nan, np.nan])
    p = np.append(P10, [0.99, 0.01])
    assert auroc(y, p) == pytest.approx(5 / 6)
    assert binary_metrics(y, p, 0.5).at_threshold.confusion == ConfusionCounts(tp=3, fp=2, tn=4, fn=1)


def test_threshold_maximises_mcc():
    # MCC per candidate (predict positive for p >= t): 0.9 -> 0.408, 0.8 -> 12/sqrt(384) = 0.612,
    # 0.7 -> 0.356, 0.6 -> 0.583, 0.55 -> 0.408, 0.4 -> 0.25, 0.3 -> 0.535, 0.2 -> 0.408, 0.1 -> 0.272, 0.05 -> 0.
    assert choose_threshold(Y10, P10) == 0.8
    brute_force = {t: matthews_corrcoef(Y10, P10 >= t) for t in np.unique(P10)}
    assert max(brute_force, key=brute_force.get) == 0.8


def test_threshold_ties_go_to_the_smallest():
    # t = 0.4: tp 1, fp 0, tn 2, fn 1 -> 2 / sqrt(12); t = 0.2: tp 2, fp 1, tn 1, fn 0 -> 2 / sqrt(12) too.
    y = np.array([0, 1, 0, 1], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert matthews_corrcoef(y, p >= 0.4) == pytest.approx(matthews_corrcoef(y, p >= 0.2))
    assert choose_threshold(y, p) == 0.2


def test_threshold_with_one_validation_class_is_nan(caplog):
    with caplog.at_level(logging.WARNING):
        assert math.isnan(choose_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), context="valid fold of label 'y'"))
    assert "threshold undefined: valid fold of label 'y' has only one class" in caplog.text
    result = binary_metrics(Y10, P10, math.nan).at_threshold
    assert result.confusion is None and math.isnan(result.mcc) and math.isnan(result.accuracy)


def _signal(n: int, positives: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    y[rng.choice(n, positives, replace=False)] = 1
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    return y, p


def test_bootstrap_interval_contains_estimate_and_is_seeded():
    y, p = _signal(200, 40)
    for metric_fn in (auroc, auprc):
        low, high = bootstrap_interval(metric_fn, y, p, n_samples=200, seed=7)
        assert low < metric_fn(y, p) < high
        assert high - low < 0.3
        assert bootstrap_interval(metric_fn, y, p, n_samples=200, seed=7) == (low, high)
        assert bootstrap_interval(metric_fn, y, p, n_samples=200, seed=8) != (low, high)
    wide = bootstrap_interval(auroc, y, p, n_samples=200, seed=7)
    narrow = bootstrap_interval(auroc, y, p, n_samples=200, seed=7, level=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_bootstrap_skips_one_class_resamples_and_gives_up_when_too_many(caplog):
    # 3 positives in 100: a resample misses all of them with probability 0.97^100 = 5 %, under the 10 % limit.
    y, p = _signal(100, 3)
    low, high = bootstrap_interval(auroc, y, p, n_samples=200, seed=0)
    assert not math.isnan(low) and low <= high
    # 1 positive in 100: 0.99^100 = 37 % of resamples have one class: no interval.
    y, p = _signal(100, 1)
    with caplog.at_level(logging.WARNING):
        assert all(math.isnan(bound) for bound in bootstrap_interval(auroc, y, p, n_samples=200, seed=0, context="test fold"))
    assert "bootstrap interval undefined: test fold has too few of one class" in caplog.text
    assert all(math.isnan(bound) for bound in bootstrap_interval(auroc, np.ones(5), np.linspace(0, 1, 5), 100, 0))


def test_undefined_auroc_is_nan_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        result = binary_metrics(np.zeros(5), np.linspace(0, 1, 5), 0.5, context="test fold of label 'X'")
    assert math.isnan(result.auroc) and math.isnan(result.auprc) and math.isnan(result.at_threshold.mcc)
    assert result.at_threshold.accuracy == pytest.approx(0.4)  # p >= 0.5: 0.5, 0.75, 1.0 wrongly positive
    assert "AUROC undefined: test fold of label 'X' has only one class" in caplog.text
    assert "AUPRC undefined: test fold of label 'X' has only one class" in caplog.text


def test_bad_binary_input_is_an_input_error():
    with pytest.raises(InputError, match="0 or 1"):
        auroc(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(InputError, match="rows"):
        auroc(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(InputError, match="NaN"):
        auroc(np.array([0, 1]), np.array([0.1, np.nan]))


def test_multilabel_masks_missing_labels():
    y = np.array([[1, 0, 1], [0, np.nan, 1], [1, 1, np.nan], [0, 0, 1], [np.nan, 1, 1], [1, np.nan, 1]])
    p = np.array([[0.9, 0.2, 0.5], [0.3, 0.99, 0.5], [0.4, 0.7, 0.5], [0.6, 0.3, 0.5], [0.0, 0.1, 0.5], [0.8, 0.0, 0.5]])
    scores = multilabel_metrics(y, p, ["a", "b", "c"])
    # a on rows 0-3, 5: positives 0.9, 0.4, 0.8 vs negatives 0.3, 0.6 -> pairs won 2 + 1 + 2 = 5 of 6.
    assert scores["auroc"].by_label["a"] == pytest.approx(5 / 6)
    # b on rows 0, 2, 3, 4: positives 0.7, 0.1 vs negatives 0.2, 0.3 -> 2 + 0 = 2 of 4 (the 0.99 row is missing).
    assert scores["auroc"].by_label["b"] == pytest.approx(0.5)
    # c has positives only: undefined and left out of the mean.
    assert math.isnan(scores["auroc"].by_label["c"])
    assert scores["auroc"].mean == pytest.approx((5 / 6 + 0.5) / 2)
    assert scores["auprc"].by_label["a"] == pytest.approx(auprc(y[[0, 1, 2, 3, 5], 0], p[[0, 1, 2, 3, 5], 0]))


def test_multiclass_by_hand():
    classes = ["a", "b", "c", "d"]
    y = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    probabilities = np.full((6, 4), 0.1)
    probabilities[np.arange(6), predicted] = 0.7
    # accuracy 4/6. a: tp 1, fp 1, fn 1 -> 2/4; b: tp 2, fp 1, fn 0 -> 4/5; c: tp 1, fp 0, fn 1 -> 2/3;
    # d is neither true nor predicted: undefined, not in the macro mean.
    result = multiclass_metrics(y, probabilities, classes)
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.f1_by_class["a"] == pytest.approx(0.5)
    assert result.f1_by_class["b"] == pytest.approx(0.8)
    assert result.f1_by_class["c"] == pytest.approx(2 / 3)
    assert math.isnan(result.f1_by_class["d"])
    assert result.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert result.macro_f1 == pytest.approx(f1_score(y, predicted, average="macro"))
    assert result.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, predicted))  # (1/2 + 1 + 1/2) / 3
    assert result.confusion == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    assert result.support == {"a": 2, "b": 2, "c": 2, "d": 0}
    # one against the rest: a is wrong for molecules 1 (a predicted b) and 5 (c predicted a)
    assert result.accuracy_by_class == pytest.approx({"a": 4 / 6, "b": 5 / 6, "c": 5 / 6, "d": 1.0})
    for k, name in enumerate("abc"):
        assert result.auroc_by_class[name] == pytest.approx(roc_auc_score(y == k, probabilities[:, k]))
    assert math.isnan(result.auroc_by_class["d"])  # no molecule of class d: no AUROC, never a silent 0.5
    assert result.macro_auroc == pytest.approx(np.mean([result.auroc_by_class[name] for name in "abc"]))


def test_a_class_too_rare_for_a_metric_is_named_in_the_log(caplog):
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    with caplog.at_level(logging.WARNING):
        result = multiclass_metrics(np.array([0, 1, 0]), probabilities, ["sweet", "bitter", "umami"], context="test fold")
    assert math.isnan(result.auroc_by_class["umami"]) and math.isnan(result.f1_by_class["umami"])
    assert result.accuracy_by_class["umami"] == 1.0 and result.support["umami"] == 0
    assert "AUROC undefined: test fold, class 'umami' against the rest" in caplog.text


def test_multiclass_leaves_out_missing_and_rejects_unknown_classes():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert multiclass_metrics(np.array([0, 1, np.nan]), probabilities, ["x", "y"]).accuracy == 1.0
    with pytest.raises(InputError, match="class indices"):
        multiclass_metrics(np.array([0, 1, 2]), probabilities, ["x", "y"])


def test_regression_by_hand():
    # label u: errors 0.5, 0, -0.5, 1 -> RMSE sqrt(1.5 / 4), MAE 2 / 4; SS_tot 5, SS_res 1.5 -> R2 0.7;
    # Pearson r = 5.5 / sqrt(5 * 7.25) (deviations -1.5, -0.5, 0.5, 1.5 and -1.25, -0.75, -0.25, 2.25).
    # label v: one missing; on the rest predictions are exact.
    y = np.array([[1, 10], [2, np.nan], [3, 30], [4, 40]])
    predicted = np.array([[1.5, 10], [2, 99], [2.5, 30], [5, 40]])
    scores = regression_metrics(y, predicted, ["u", "v"])
    assert scores["rmse"].by_label["u"] == pytest.approx(math.sqrt(0.375))
    assert scores["mae"].by_label["u"] == pytest.approx(0.5)
    assert scores["r2"].by_label["u"] == pytest.approx(0.7)
    assert scores["pearson_r"].by_label["u"] == pytest.approx(5.5 / math.sqrt(36.25))
    assert scores["rmse"].by_label["v"] == 0 and scores["r2"].by_label["v"] == 1
    assert scores["rmse"].mean == pytest.approx(math.sqrt(0.375) / 2)
    assert scores["pearson_r"].mean == pytest.approx((5.5 / math.sqrt(36.25) + 1) / 2)


def test_constant_regression_values_give_nan_r2_and_r(caplog):
    with caplog.at_level(logging.WARNING):
        scores = regression_metrics(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0]), ["w"], context="test fold")
    assert math.isnan(scores["r2"].mean) and math.isnan(scores["pearson_r"].mean)
    assert scores["mae"].mean == pytest.approx(2 / 3)
    assert "R2 undefined: test fold of label 'w'" in caplog.text


def test_validation_score_and_its_direction():
    assert HIGHER_IS_BETTER == {
        TaskType.BINARY: True, TaskType.MULTILABEL: True, TaskType.MULTICLASS: True, TaskType.REGRESSION: False
    }
    # binary, as the training loop passes it: (n, 1) truth and (n, 1) probabilities
    good, bad = validation_score(TaskType.BINARY, Y10[:, None], P10[:, None]), validation_score(TaskType.BINARY, Y10, 1 - P10)
    assert good == pytest.approx(5 / 6) and good > bad
    y = np.array([[1, 0], [0, 1], [1, np.nan], [0, 1]])
    p = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.5], [0.4, 0.3]])
    assert validation_score(TaskType.MULTILABEL, y, p) == pytest.approx((1 + 1) / 2)
    probabilities = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
    assert validation_score(TaskType.MULTICLASS, np.array([0, 1, 2, 2]), probabilities) == pytest.approx(
        f1_score([0, 1, 2, 2], [0, 1, 2, 0], average="macro")
    )
    truth = np.array([[1.0], [2.0], [3.0]])
    close, far = validation_score(TaskType.REGRESSION, truth, truth + 0.1), validation_score(TaskType.REGRESSION, truth, truth + 1)
    assert close == pytest.approx(0.1) and far == pytest.approx(1.0)
    assert close < far  # lower is better for regression


def test_validation_score_is_nan_and_silent_when_undefined(caplog):
    with caplog.at_level(logging.WARNING):
        assert math.isnan(validation_score(TaskType.BINARY, np.zeros((4, 1)), np.full((4, 1), 0.3)))
    assert caplog.text == ""
