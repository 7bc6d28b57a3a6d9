"""How well calibrated the test-fold probabilities are, before and after the calibration fitted on each seed's
validation fold: Brier score and expected calibration error per model and seed, and the reliability diagrams."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chemlm import layout
from chemlm.calibration import apply, brier_score, expected_calibration_error, reliability
from chemlm.io import read_csv, write_csv
from chemlm.report.figures import model_colors, save_figure
from chemlm.report.results import DeclaredInputs, read_json_file
from chemlm.tasks import TaskSpec, label_header, prediction_header

logger = logging.getLogger(__name__)

TABLE_COLUMNS = ["model", "seed", "brier_before", "brier_after", "ece_before", "ece_after"]


def test_probabilities(files: DeclaredInputs, task: TaskSpec, model: str, split: str, seed: int, is_baseline: bool, method: str):
    """Test-fold truths and probabilities (n, labels) of one run, before and after its calibration."""
    predictions = read_csv(files(layout.predictions(task.name, model, split, seed, is_baseline)), dtype={"mol_id": str, "fold": str})
    calibration = read_json_file(files(layout.run_file("calibration.json", task.name, model, split, seed, is_baseline)))
    test = predictions[predictions["fold"] == "test"]
    truth = test[[label_header(label) for label in task.label_columns]].to_numpy(dtype=float)
    before = test[[prediction_header(label) for label in task.label_columns]].to_numpy(dtype=float)
    return truth, before, apply(calibration, method, task.label_columns, before)


def macro(score, truth: np.ndarray, probabilities: np.ndarray) -> float:
    """A score per label, averaged over labels (as the metrics average AUROC): labels with other base rates are not pooled."""
    return float(np.nanmean([score(truth[:, column], probabilities[:, column]) for column in range(truth.shape[1])]))


def write_calibration_report(
    task: TaskSpec, split: str, checkpoints: list[str], baselines: list[str], seeds: list[int], method: str,
    inputs: Iterable[str], figure_png: str | Path, table_csv: str | Path, root: str | Path = ".",
) -> pd.DataFrame:
    """The table (TABLE_COLUMNS, one row per model and seed) and the reliability diagrams (one panel per model, seeds
    and labels pooled) of one task and split."""
    files = DeclaredInputs(inputs, root)
    models = [*checkpoints, *baselines]
    rows, pooled = [], {}
    for model in models:
        parts = []
        for seed in seeds:
            truth, before, after = test_probabilities(files, task, model, split, seed, model in baselines, method)
            rows.append([model, seed, macro(brier_score, truth, before), macro(brier_score, truth, after),
                         macro(expected_calibration_error, truth, before), macro(expected_calibration_error, truth, after)])
            parts.append((truth.ravel(), before.ravel(), after.ravel()))
        pooled[model] = tuple(np.concatenate(arrays) for arrays in zip(*parts))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    write_csv(table, table_csv)
    save_figure(reliability_figure(pooled, f"{task.name} / {split}, test fold, {method} calibration"), figure_png)
    logger.info("%s / %s: calibration of %s", task.name, split, ", ".join(models))
    return table


def reliability_figure(pooled: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str) -> Figure:
    columns = min(3, len(pooled))
    rows = -(-len(pooled) // columns)
    figure = Figure(figsize=(4.2 * columns, 4 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    colors = model_colors(list(pooled))
    for axis, (model, (truth, before, after)) in zip(axes, pooled.items()):
        for probabilities, style, name in ((before, ":", "before"), (after, "-", "after")):
            predicted, observed, counts = reliability(truth, probabilities)
            filled = counts > 0
            axis.plot(predicted[filled], observed[filled], style, marker="o", markersize=3, color=colors[model],
                      label=f"{name} (ECE {expected_calibration_error(truth, probabilities):.3f})")
        axis.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        axis.set(title=model, xlabel="predicted probability", ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1))
        axis.legend(fontsize=7, loc="upper left")
    for axis in axes[len(pooled):]:
        axis.axis("off")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure
