"""Is the uncertainty useful? The test-fold error of each model's seed ensemble when only the most confident
predictions (the lowest sd over the seeds' models) or the most in-domain ones (the highest ECFP4 Tanimoto similarity
to the training fold) are kept, against a random choice of the same size.

The ensemble's members are the seeds of a single split, which need to share their test fold (scaffold splits do), or
the repeats of a cross-validation, each repeat's folds together (every molecule once per repeat, predicted by the
model that did not train on it); its molecules are those every member predicts. The error is the Brier score (classification: the mean over labels, or over classes, of the squared
difference of probability and outcome) or the RMSE in the label's units (regression). Binary and multi-label
probabilities are the calibrated ones, which the predictions hand to users; the sd is that of the seeds' scores, as
the predictions show it, and 0 below the scores' resolution (chemlm.scoring.ensemble_sd): a model whose seeds agree
exactly has no sd ordering.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chemlm import layout
from chemlm.calibration import CALIBRATED_TYPES, apply
from chemlm.io import read_csv, write_csv
from chemlm.report.figures import model_colors, save_figure
from chemlm.report.results import DeclaredInputs, read_json_file
from chemlm.scoring import ensemble_sd
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

COVERAGES = (1.0, 0.75, 0.5, 0.25, 0.1)
ORDERINGS = ("ensemble sd", "similarity", "random")
RANDOM_ORDERS = 50
TABLE_COLUMNS = ["model", "ordering", "coverage", "molecules", "metric", "error"]


def squared_errors(task: TaskSpec, test: pd.DataFrame, mean: np.ndarray) -> np.ndarray:
    """Each molecule's mean squared error over its labelled outputs."""
    if task.type is TaskType.MULTICLASS:
        classes = [column.removeprefix(prediction_header("")) for column in test.columns if column.startswith(prediction_header(""))]
        truth = test[label_header(task.label_columns[0])].astype(str).to_numpy()
        onehot = np.column_stack([(truth == name).astype(float) for name in classes])
        return ((mean - onehot) ** 2).mean(axis=1)
    truth = test[[label_header(label) for label in task.label_columns]].to_numpy(dtype=float)
    errors = (mean - truth) ** 2
    present = ~np.isnan(truth)
    with np.errstate(invalid="ignore"):
        return np.where(present, errors, 0).sum(axis=1) / present.sum(axis=1)


def members(instances: list) -> list[list]:
    """The ensemble's members: each seed of a single split; for a cross-validation, each repeat's folds together, whose
    test folds hold every molecule once, each predicted by the model that did not train on it."""
    grouped: dict[str, list] = {}
    for instance in instances:
        grouped.setdefault(layout.instance_name(instance).split("-fold")[0], []).append(instance)
    return list(grouped.values())


def ensemble(files: DeclaredInputs, task: TaskSpec, model: str, split: str, seeds: list[str], is_baseline: bool, method: str):
    """The members' test predictions (chemlm.report.uncertainty.members) on the molecules every member predicts:
    (the first member's rows, mean of the calibrated probabilities or of the values, sd of the scores)."""
    text = {label_header(task.label_columns[0]): str} if task.type is TaskType.MULTICLASS else {}
    tables, calibrated = [], []
    for member in members(seeds):
        parts, calibrated_parts = [], []
        for instance in member:
            predictions = read_csv(files(layout.predictions(task.name, model, split, instance, is_baseline)), dtype={"mol_id": str, "fold": str, **text})
            test = predictions[predictions["fold"] == "test"].set_index("mol_id")
            parts.append(test)
            if task.type in CALIBRATED_TYPES:
                calibration = read_json_file(files(layout.run_file("calibration.json", task.name, model, split, instance, is_baseline)))
                scores = test[[column for column in test.columns if column.startswith(prediction_header(""))]].to_numpy(dtype=float)
                calibrated_parts.append(pd.DataFrame(apply(calibration, method, task.label_columns, scores), index=test.index))
        tables.append(pd.concat(parts))
        if calibrated_parts:
            calibrated.append(pd.concat(calibrated_parts))
    common = tables[0].index
    for table in tables[1:]:
        common = common.intersection(table.index, sort=False)
    columns = [column for column in tables[0].columns if column.startswith(prediction_header(""))]
    stacked = np.stack([table.loc[common, columns].to_numpy(dtype=float) for table in tables])
    mean = stacked.mean(axis=0)
    if calibrated and len(common):
        mean = np.mean([table.loc[common].to_numpy(dtype=float) for table in calibrated], axis=0)
    return tables[0].loc[common].reset_index(), mean, ensemble_sd(stacked)


def error_at(errors: np.ndarray, order: np.ndarray, coverage: float, regression: bool) -> tuple[int, float]:
    kept = errors[order[: max(1, math.ceil(coverage * len(order)))]]
    kept = kept[~np.isnan(kept)]
    value = float(np.mean(kept)) if len(kept) else math.nan
    return len(kept), math.sqrt(value) if regression else value


def orderings(sd: np.ndarray, similarity: np.ndarray) -> dict[str, list[np.ndarray]]:
    """The molecule orders to compare: by rising sd (when the seeds disagree at all), by falling similarity, random."""
    spread = np.nanmean(sd, axis=1) if sd.size else sd
    found: dict[str, list[np.ndarray]] = {"similarity": [np.argsort(-similarity, kind="stable")]}
    if np.isfinite(spread).all() and np.ptp(spread) > 0:
        found["ensemble sd"] = [np.argsort(spread, kind="stable")]
    rng = np.random.default_rng(0)
    found["random"] = [rng.permutation(len(similarity)) for _ in range(RANDOM_ORDERS)]
    return found


def write_uncertainty_report(
    task: TaskSpec, split: str, checkpoints: list[str], baselines: list[str], seeds: list[int], method: str,
    inputs: Iterable[str], figure_png: str | Path, table_csv: str | Path, root: str | Path = ".",
) -> pd.DataFrame:
    """The table (TABLE_COLUMNS) and figure of one task and split; an ordering a model does not have (one seed, or
    seeds that all agree) is left out of both."""
    files = DeclaredInputs(inputs, root)
    similarity_by_member = [
        pd.concat([read_csv(files(layout.test_similarity(task.name, split, instance)), dtype={"mol_id": str}).set_index("mol_id")["max_similarity"]
                   for instance in member])
        for member in members(seeds)
    ]
    regression = task.type is TaskType.REGRESSION
    metric = "RMSE" if regression else "Brier score" if task.type is TaskType.MULTICLASS else f"Brier score ({method} calibrated)"
    rows = []
    for model in [*checkpoints, *baselines]:
        test, mean, sd = ensemble(files, task, model, split, seeds, model in baselines, method)
        if test.empty:
            logger.warning("%s / %s / %s: no molecule is in every member's test fold; no ensemble to judge", task.name, split, model)
            continue
        similarity = np.mean([series.loc[test["mol_id"]].to_numpy(dtype=float) for series in similarity_by_member], axis=0)
        errors = squared_errors(task, test, mean)
        for ordering, orders in orderings(sd, similarity).items():
            for coverage in COVERAGES:
                results = [error_at(errors, order, coverage, regression) for order in orders]
                rows.append([model, ordering, coverage, results[0][0], metric, float(np.mean([error for _, error in results]))])
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    write_csv(table, table_csv)
    save_figure(uncertainty_figure(table, f"{task.name} / {split}, test fold: {metric} of the kept predictions"), figure_png)
    return table


def uncertainty_figure(table: pd.DataFrame, title: str) -> Figure:
    models = list(dict.fromkeys(table["model"]))
    columns = max(1, min(3, len(models)))
    rows = max(1, -(-len(models) // columns))
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    styles = {"ensemble sd": "-", "similarity": "--", "random": ":"}
    colors = model_colors(models)
    for axis, model in zip(axes, models):
        for ordering, group in table[table["model"] == model].groupby("ordering", sort=False):
            axis.plot(group["coverage"], group["error"], styles[ordering], marker="o", markersize=3, color=colors[model], label=ordering)
        axis.invert_xaxis()
        axis.set(title=model, xlabel="share of test molecules kept", ylabel=table["metric"].iloc[0])
        axis.legend(fontsize=7)
    for axis in axes[len(models):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure
