"""Prediction tables -> metrics (names, values, JSON with null for NaN) and metrics files -> summary."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from chemlm.evaluate import evaluate_predictions, summarize, write_metrics, write_summary
from chemlm.io import InputError, read_json, write_json
from chemlm.metrics import auprc, auroc
from chemlm.tasks import TaskSpec, TaskType

BINARY = TaskSpec("hiv", "-", "smiles", ("active",), TaskType.BINARY)
MULTILABEL = TaskSpec("tox", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
MULTICLASS = TaskSpec("act", "-", "smiles", ("activity",), TaskType.MULTICLASS)
REGRESSION_1 = TaskSpec("esol", "-", "smiles", ("logS",), TaskType.REGRESSION)
REGRESSION_2 = TaskSpec("qm", "-", "smiles", ("u", "v"), TaskType.REGRESSION)

# Test fold: the ten molecules of tests/test_metrics.py (AUROC 5/6). Valid fold: MCC is highest at 0.2
# (tied with 0.4, the smaller wins).
TEST_Y = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
TEST_P = [0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1, 0.55, 0.05]
VALID_Y = [0, 1, 0, 1]
VALID_P = [0.1, 0.2, 0.3, 0.4]


def prediction_table(valid: dict[str, list], test: dict[str, list]) -> pd.DataFrame:
    """A predictions table (design item 5) from the valid and test columns."""
    folds = [
        pd.DataFrame({"mol_id": [f"{fold}{i}" for i in range(len(next(iter(columns.values()))))], "fold": fold, **columns})
        for fold, columns in (("valid", valid), ("test", test))
    ]
    return pd.concat(folds, ignore_index=True)


def binary_table(test_y: list = TEST_Y) -> pd.DataFrame:
    return prediction_table(
        {"y:active": VALID_Y, "p:active": VALID_P},
        {"y:active": test_y, "p:active": TEST_P},
    )


def strict_json(path) -> dict:
    """Parse JSON rejecting the non-standard NaN / Infinity tokens Python would otherwise accept."""
    def reject(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_binary_metric_names_and_values():
    result = evaluate_predictions(binary_table(), BINARY, bootstrap_samples=200, seed=0)
    metrics = result["metrics"]
    per_threshold = ["mcc", "f1", "accuracy", "tp", "fp", "tn", "fn"]
    assert list(metrics) == [
        "auroc", "auprc", "threshold@valid", "prediction_spread",
        *(f"{name}@0.5" for name in per_threshold),
        *(f"{name}@valid" for name in per_threshold),
    ]
    assert metrics["auroc"] == pytest.approx(5 / 6)
    test_p = np.array(TEST_P)
    assert metrics["prediction_spread"] == pytest.approx(np.std(np.log(test_p / (1 - test_p))))
    assert metrics["auprc"] == pytest.approx((1 + 1 + 0.75 + 4 / 7) / 4)
    # At 0.5: tp 3, fp 2, tn 4, fn 1 (hand-computed in test_metrics.py).
    assert (metrics["tp@0.5"], metrics["fp@0.5"], metrics["tn@0.5"], metrics["fn@0.5"]) == (3, 2, 4, 1)
    assert metrics["mcc@0.5"] == pytest.approx(10 / math.sqrt(600))
    # At the valid threshold 0.2: positives all >= 0.2 (tp 4, fn 0); negatives 0.7, 0.55, 0.4, 0.2 too
    # (fp 4, tn 2). accuracy 6/10, F1 8/12, MCC (4*2 - 4*0) / sqrt(8*4*6*2).
    assert metrics["threshold@valid"] == 0.2
    assert (metrics["tp@valid"], metrics["fp@valid"], metrics["tn@valid"], metrics["fn@valid"]) == (4, 4, 2, 0)
    assert metrics["accuracy@valid"] == pytest.approx(0.6)
    assert metrics["f1@valid"] == pytest.approx(8 / 12)
    assert metrics["mcc@valid"] == pytest.approx(8 / math.sqrt(384))
    assert result["confusion"] == {
        "0.5": {"threshold": 0.5, "tp": 3, "fp": 2, "tn": 4, "fn": 1},
        "valid": {"threshold": 0.2, "tp": 4, "fp": 4, "tn": 2, "fn": 0},
    }
    assert list(result["intervals"]) == ["auroc", "auprc"]
    for name, (low, high) in result["intervals"].items():
        assert low <= metrics[name] <= high


def test_binary_valid_fold_only_sets_the_threshold():
    table = binary_table()
    shuffled_valid = table.copy()
    shuffled_valid.loc[shuffled_valid["fold"] == "valid", "p:active"] = [0.9, 0.1, 0.8, 0.2]
    original = evaluate_predictions(table, BINARY, 0, 0)["metrics"]
    changed = evaluate_predictions(shuffled_valid, BINARY, 0, 0)["metrics"]
    assert changed["auroc"] == original["auroc"] and changed["mcc@0.5"] == original["mcc@0.5"]
    assert changed["threshold@valid"] != original["threshold@valid"]


def test_no_bootstrap_means_no_intervals():
    assert evaluate_predictions(binary_table(), BINARY, bootstrap_samples=0, seed=0)["intervals"] == {}


def test_multilabel_per_label_and_means():
    valid = {"y:a": [0, 1], "y:b": [1, 0], "p:a": [0.9, 0.1], "p:b": [0.9, 0.1]}  # deliberately wrong: ignored
    test = {
        "y:a": [1, 0, 1, 0, np.nan, 1],
        "y:b": [0, np.nan, 1, 0, 1, np.nan],
        "p:a": [0.9, 0.3, 0.4, 0.6, 0.0, 0.8],
        "p:b": [0.2, 0.99, 0.7, 0.3, 0.1, 0.0],
    }
    metrics = evaluate_predictions(prediction_table(valid, test), MULTILABEL, 100, 0)["metrics"]
    assert list(metrics) == ["auroc", "auprc", "auroc[a]", "auprc[a]", "auroc[b]", "auprc[b]", "prediction_spread"]
    assert metrics["auroc[a]"] == pytest.approx(5 / 6)  # positives 0.9, 0.4, 0.8 vs negatives 0.3, 0.6
    assert metrics["auroc[b]"] == pytest.approx(0.5)  # positives 0.7, 0.1 vs negatives 0.2, 0.3; NaN rows left out
    assert metrics["auroc"] == pytest.approx((5 / 6 + 0.5) / 2)
    b_rows = [0, 2, 3, 4]
    expected_b = auprc(np.array(test["y:b"])[b_rows], np.array(test["p:b"])[b_rows])
    assert metrics["auprc[b]"] == pytest.approx(expected_b)


def test_multiclass_matches_class_names_as_text():
    # y holds class names; p:<class> columns in head order. Test predictions: argmax low, mid, mid, high, low.
    test = {
        "y:activity": ["low", "low", "mid", "high", "high"],
        "p:high": [0.1, 0.2, 0.1, 0.8, 0.3],
        "p:low": [0.8, 0.2, 0.1, 0.1, 0.6],
        "p:mid": [0.1, 0.6, 0.8, 0.1, 0.1],
    }
    valid = {"y:activity": ["mid"], "p:high": [0.9], "p:low": [0.05], "p:mid": [0.05]}
    evaluated = evaluate_predictions(prediction_table(valid, test), MULTICLASS, 100, 0)
    metrics = evaluated["metrics"]
    # accuracy 3/5. high: tp 1, fp 0, fn 1 -> 2/3; low: tp 1, fp 1, fn 1 -> 1/2; mid: tp 1, fp 1, fn 0 -> 2/3.
    assert list(metrics) == ["accuracy", "balanced_accuracy", "macro_f1", "auroc",
                             *(f"{metric}[{name}]" for metric in ("accuracy", "f1", "auroc") for name in ("high", "low", "mid")),
                             "prediction_spread"]
    assert evaluated["confusion"] == {"classes": ["high", "low", "mid"], "matrix": [[1, 1, 0], [0, 1, 1], [0, 0, 1]],
                                      "support": {"high": 2, "low": 2, "mid": 1}}
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert metrics["accuracy[mid]"] == pytest.approx(4 / 5)  # the one wrong: a low predicted mid
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["f1[high]"] == pytest.approx(2 / 3) and metrics["f1[low]"] == pytest.approx(0.5)
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 2 / 3) / 3)


def test_multiclass_numeric_classes_round_trip_through_csv(tmp_path):
    # Integer classes with a missing label come back from the CSV as 0.0, 1.0, 2.0 and empty.
    test = {"y:activity": [0, 1, 2, np.nan], "p:0": [0.7, 0.2, 0.1, 0.3], "p:1": [0.2, 0.7, 0.1, 0.3], "p:2": [0.1, 0.1, 0.8, 0.4]}
    valid = {"y:activity": [1], "p:0": [0.1], "p:1": [0.8], "p:2": [0.1]}
    predictions_csv, out_json = tmp_path / "predictions.csv", tmp_path / "metrics.json"
    prediction_table(valid, test).to_csv(predictions_csv, index=False)
    write_metrics(predictions_csv, out_json, MULTICLASS, "ckpt", "scaffold", "seed0", 0, 0)
    metrics = strict_json(out_json)["metrics"]
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0


def test_nearly_constant_predictions_have_almost_no_spread():
    """The demo's MLM model once gave every test molecule 0.278 ± 6e-5: a spread far below the flag's 0.1."""
    test_y = [1, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    table = prediction_table({"y:active": [0, 1, 0, 1], "p:active": [0.27, 0.28, 0.28, 0.27]},
                             {"y:active": test_y, "p:active": list(0.278 + np.linspace(-5.9e-5, 5.9e-5, 10))})
    assert evaluate_predictions(table, BINARY, 0, 0)["metrics"]["prediction_spread"] < 1e-3


def test_regression_names_depend_on_the_number_of_labels():
    test = {"y:logS": [1, 2, 3, 4], "p:logS": [1.5, 2, 2.5, 5]}
    valid = {"y:logS": [0], "p:logS": [100]}
    metrics = evaluate_predictions(prediction_table(valid, test), REGRESSION_1, 100, 0)["metrics"]
    # errors 0.5, 0, -0.5, 1 (hand-computed in test_metrics.py)
    assert list(metrics) == ["rmse", "mae", "r2", "pearson_r", "prediction_spread"]
    # sd of the predictions (1.3463) over the sd of the truths (1.1180)
    assert metrics["prediction_spread"] == pytest.approx(np.std([1.5, 2, 2.5, 5]) / np.std([1, 2, 3, 4]))
    assert metrics["rmse"] == pytest.approx(math.sqrt(0.375)) and metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(0.7) and metrics["pearson_r"] == pytest.approx(5.5 / math.sqrt(36.25))

    test = {"y:u": [1, 2, 3, 4], "y:v": [10, np.nan, 30, 40], "p:u": [1.5, 2, 2.5, 5], "p:v": [10, 99, 30, 40]}
    valid = {"y:u": [0], "y:v": [0], "p:u": [0], "p:v": [0]}
    metrics = evaluate_predictions(prediction_table(valid, test), REGRESSION_2, 100, 0)["metrics"]
    assert list(metrics)[:4] == ["rmse", "mae", "r2", "pearson_r"]
    assert set(metrics) - {"rmse", "mae", "r2", "pearson_r", "prediction_spread"} == {f"{m}[{label}]" for m in ("rmse", "mae", "r2", "pearson_r") for label in "uv"}
    assert metrics["rmse[v]"] == 0 and metrics["rmse"] == pytest.approx(math.sqrt(0.375) / 2)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (binary_table().drop(columns="p:active"), "missing column.*p:active"),
        (binary_table()[lambda t: t["fold"] == "test"], "no rows of the valid fold"),
        (binary_table().assign(fold="train"), "unknown value 'train'"),
        (binary_table().assign(**{"y:active": 2}), "0 or 1"),
        (binary_table().assign(**{"p:active": 1.5}), r"\[0, 1\]"),
        (binary_table().assign(**{"p:active": "high"}), "not a number: 'high'"),
    ],
)
def test_bad_binary_tables_are_input_errors(table, message):
    with pytest.raises(InputError, match=message):
        evaluate_predictions(table, BINARY, 10, 0)


def test_unknown_class_is_an_input_error():
    table = prediction_table({"y:activity": ["a"], "p:a": [1.0], "p:b": [0.0]}, {"y:activity": ["c"], "p:a": [1.0], "p:b": [0.0]})
    with pytest.raises(InputError, match="class 'c' has no p:<class> column"):
        evaluate_predictions(table, MULTICLASS, 0, 0)


def test_write_metrics_writes_null_for_undefined(tmp_path, caplog):
    predictions_csv, out_json = tmp_path / "predictions.csv", tmp_path / "out" / "seed3.json"
    binary_table(test_y=[0] * 10).to_csv(predictions_csv, index=False)  # one class in the test fold
    write_metrics(predictions_csv, out_json, BINARY, "chemberta", "scaffold", "seed3", 3, bootstrap_samples=50)
    record = strict_json(out_json)
    assert {key: record[key] for key in ("task", "checkpoint", "split", "seed", "type")} == {
        "task": "hiv", "checkpoint": "chemberta", "split": "scaffold", "seed": 3, "type": "binary"
    }
    assert record["metrics"]["auroc"] is None and record["metrics"]["mcc@0.5"] is None
    assert record["metrics"]["accuracy@0.5"] == pytest.approx(0.5)  # 0.9, 0.8, 0.7, 0.6, 0.55 wrongly positive
    assert record["intervals"] == {"auroc": [None, None], "auprc": [None, None]}
    assert record["confusion"]["0.5"] == {"threshold": 0.5, "tp": 0, "fp": 5, "tn": 5, "fn": 0}
    assert "AUROC undefined: test fold of label 'active' has only one class" in caplog.text


def test_write_metrics_names_the_file_in_errors(tmp_path):
    predictions_csv = tmp_path / "predictions.csv"
    binary_table().drop(columns="y:active").to_csv(predictions_csv, index=False)
    with pytest.raises(InputError, match=r"predictions\.csv: missing column\(s\) y:active"):
        write_metrics(predictions_csv, tmp_path / "m.json", BINARY, "c", "s", "seed0", 0, 0)


def write_fake_metrics(directory, checkpoint: str, seed: int, metrics: dict) -> object:
    path = directory / f"{checkpoint}-seed{seed}.json"
    write_json({"task": "hiv", "checkpoint": checkpoint, "split": "scaffold", "instance": f"seed{seed}", "seed": seed, "type": "binary",
                "metrics": metrics, "intervals": {}, "confusion": {}}, path)
    return path


def test_summarize_mean_sd_and_defined_seeds(tmp_path):
    files = [
        # listed out of order: rows come back sorted by checkpoint, then split instance (seed10 after seed2)
        write_fake_metrics(tmp_path, "zinc", 0, {"auroc": 0.70, "mcc@0.5": 0.1}),
        write_fake_metrics(tmp_path, "chemberta", 10, {"auroc": 0.80, "mcc@0.5": None, "extra": 1.0}),
        write_fake_metrics(tmp_path, "chemberta", 0, {"auroc": 0.70, "mcc@0.5": 0.2}),
        write_fake_metrics(tmp_path, "chemberta", 2, {"auroc": 0.75, "mcc@0.5": 0.4}),
    ]
    per_seed, summary = summarize(files)
    assert list(per_seed.columns) == ["task", "checkpoint", "split", "instance", "metric", "value"]
    assert per_seed[["checkpoint", "instance"]].drop_duplicates().values.tolist() == [
        ["chemberta", "seed0"], ["chemberta", "seed2"], ["chemberta", "seed10"], ["zinc", "seed0"]]
    assert per_seed[per_seed["instance"] == "seed10"]["metric"].tolist() == ["auroc", "mcc@0.5", "extra"]
    assert math.isnan(per_seed.set_index(["checkpoint", "instance", "metric"]).loc[("chemberta", "seed10", "mcc@0.5"), "value"])

    assert list(summary.columns) == ["task", "checkpoint", "split", "metric", "mean", "sd", "n_instances"]
    assert summary[["checkpoint", "metric"]].values.tolist() == [
        ["chemberta", "auroc"], ["chemberta", "mcc@0.5"], ["chemberta", "extra"], ["zinc", "auroc"], ["zinc", "mcc@0.5"]
    ]
    rows = summary.set_index(["checkpoint", "metric"])
    assert rows.loc[("chemberta", "auroc"), "mean"] == pytest.approx(0.75)
    assert rows.loc[("chemberta", "auroc"), "sd"] == pytest.approx(0.05)  # sample sd of 0.70, 0.75, 0.80
    assert rows.loc[("chemberta", "auroc"), "n_instances"] == 3
    # one seed undefined: mean and sd of the two defined ones
    assert rows.loc[("chemberta", "mcc@0.5"), "mean"] == pytest.approx(0.3)
    assert rows.loc[("chemberta", "mcc@0.5"), "sd"] == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert rows.loc[("chemberta", "mcc@0.5"), "n_instances"] == 2
    # a single seed has no sd
    assert rows.loc[("zinc", "auroc"), "n_instances"] == 1 and math.isnan(rows.loc[("zinc", "auroc"), "sd"])


def test_write_summary_writes_both_tables(tmp_path):
    files = [write_fake_metrics(tmp_path, "c", seed, {"auroc": 0.5 + seed / 10}) for seed in range(3)]
    write_summary(files, tmp_path / "metrics.csv", tmp_path / "summary.csv")
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 3
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary[["metric", "mean", "n_instances"]].values.tolist() == [["auroc", pytest.approx(0.6), 3]]
    assert summary["sd"].iloc[0] == pytest.approx(0.1)


def test_summarize_rejects_duplicates_and_non_metrics_files(tmp_path):
    first = write_fake_metrics(tmp_path, "c", 0, {"auroc": 0.5})
    copy = tmp_path / "copy.json"
    copy.write_text(first.read_text())
    with pytest.raises(InputError, match="appears in two metrics files"):
        summarize([first, copy])
    broken = tmp_path / "broken.json"
    write_json({"task": "hiv"}, broken)
    with pytest.raises(InputError, match="broken.json: not a metrics file"):
        summarize([broken])


def test_metrics_files_written_by_write_metrics_summarize(tmp_path):
    predictions_csv = tmp_path / "predictions.csv"
    binary_table().to_csv(predictions_csv, index=False)
    files = []
    for seed in range(3):
        files.append(tmp_path / f"seed{seed}.json")
        write_metrics(predictions_csv, files[-1], BINARY, "c", "random", f"seed{seed}", seed, bootstrap_samples=20)
    _, summary = summarize(files)
    auroc_row = summary[summary["metric"] == "auroc"].iloc[0]
    assert auroc_row["mean"] == pytest.approx(auroc(np.array(TEST_Y), np.array(TEST_P)))
    assert auroc_row["sd"] == 0 and auroc_row["n_instances"] == 3
    assert read_json(files[0])["metrics"].keys() == read_json(files[2])["metrics"].keys()
