"""Figures of one task and split: test-set curves of every model and the fine-tuning learning curves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from chemlm import layout
from chemlm.io import read_csv
from chemlm.report.results import VALIDATION_METRIC, DeclaredInputs, metric_label, read_json_file
from chemlm.report.tables import save_figure
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

SEED_ALPHA = 0.55


def model_colors(models: list[str]) -> dict[str, Any]:
    palette = matplotlib.colormaps["tab10"].colors
    return {model: palette[index % len(palette)] for index, model in enumerate(models)}


def read_predictions(path: Path, task: TaskSpec) -> pd.DataFrame:
    # Class names are text (as evaluate reads them), so "1" and 1.0 don't get mixed up.
    text = {label_header(task.label_columns[0]): str} if task.type is TaskType.MULTICLASS else {}
    return read_csv(path, dtype={"mol_id": str, "fold": str, **text})


def scored_labels(predictions: pd.DataFrame, task: TaskSpec) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, 0/1 truths, scores) of the test fold for each label (multi-label) or each class one-vs-rest
    (multi-class), one entry for a binary task; molecules missing a label are left out for that label."""
    test = predictions[predictions["fold"] == "test"]
    if task.type is TaskType.MULTICLASS:
        classes = [column.removeprefix(prediction_header("")) for column in test.columns if column.startswith(prediction_header(""))]
        truth = test[label_header(task.label_columns[0])]
        present = truth.notna().to_numpy()
        names = truth[present].astype(str).str.strip()
        return [(name, (names == name).to_numpy(float), test[prediction_header(name)].to_numpy(float)[present]) for name in classes]
    scored = []
    for label in task.label_columns:
        truth = test[label_header(label)].to_numpy(float)
        present = ~np.isnan(truth)
        scored.append((label, truth[present], test[prediction_header(label)].to_numpy(float)[present]))
    return scored


def measured_and_predicted(predictions: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """Regression: test-fold truths and predictions, pooled over labels, missing truths left out."""
    test = predictions[predictions["fold"] == "test"]
    truth = test[[label_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    predicted = test[[prediction_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    present = ~np.isnan(truth)
    return truth[present], predicted[present]


@dataclass(frozen=True)
class Runs:
    """The files of one task and split that the report_figures job declares, by model and seed."""

    task: TaskSpec
    split: str
    checkpoints: tuple[str, ...]
    baselines: tuple[str, ...]
    seeds: tuple[int, ...]
    files: DeclaredInputs

    def predictions(self) -> dict[str, dict[int, pd.DataFrame]]:
        """Predictions of every model and seed."""
        return {
            model: {
                seed: read_predictions(self.files(layout.predictions(self.task.name, model, self.split, seed, model in self.baselines)), self.task)
                for seed in self.seeds
            }
            for model in (*self.checkpoints, *self.baselines)
        }

    def histories(self) -> dict[str, dict[int, tuple[pd.DataFrame, int | None]]]:
        """Fine-tuning histories with the epoch whose weights were kept, by checkpoint and seed."""
        found: dict[str, dict[int, tuple[pd.DataFrame, int | None]]] = {}
        for model in self.checkpoints:
            for seed in self.seeds:
                history = read_csv(self.files(layout.finetune_file("history.csv", self.task.name, model, self.split, seed)))
                run = read_json_file(self.files(layout.finetune_file("run.json", self.task.name, model, self.split, seed)))
                found.setdefault(model, {})[seed] = (history, run.get("best_epoch"))
        return found


GRID = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True)
class ClassificationCurves:
    """ROC and precision-recall curves of one run's test fold, macro-averaged over labels or classes (on a common
    grid of false-positive rate and recall) as the metrics table averages AUROC and AUPRC; a binary task has one."""

    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    auroc: float
    average_precision: float
    positive_rate: float

    @classmethod
    def of(cls, scored: list[tuple[str, np.ndarray, np.ndarray]]) -> ClassificationCurves | None:
        """None when no label has both classes in the test fold: the curves are undefined."""
        defined = [(truth, scores) for _, truth, scores in scored if len(np.unique(truth)) == 2]
        if not defined:
            return None
        curves = []
        for truth, scores in defined:
            false_positive_rate, true_positive_rate, _ = roc_curve(truth, scores)
            precision, recall, _ = precision_recall_curve(truth, scores)
            curves.append((false_positive_rate, true_positive_rate, precision, recall,
                           auc(false_positive_rate, true_positive_rate), average_precision_score(truth, scores), truth.mean()))
        if len(curves) == 1:
            fpr, tpr, precision, recall, auroc, average_precision, positive_rate = curves[0]
            return cls(fpr, tpr, precision, recall, float(auroc), float(average_precision), float(positive_rate))
        # precision at recall r: the best precision at any recall >= r (the usual interpolation), then the mean
        interpolated_precision = [
            np.array([precision[recall >= level].max() for level in GRID]) for _, _, precision, recall, *_ in curves
        ]
        return cls(
            GRID,
            np.mean([np.interp(GRID, fpr, tpr) for fpr, tpr, *_ in curves], axis=0),
            np.mean(interpolated_precision, axis=0),
            GRID,
            auroc=float(np.mean([curve[4] for curve in curves])),
            average_precision=float(np.mean([curve[5] for curve in curves])),
            positive_rate=float(np.mean([curve[6] for curve in curves])),
        )


def draw_classification_curves(axes: tuple[Axes, Axes], runs: Mapping[str, Mapping[int, pd.DataFrame]], task: TaskSpec) -> None:
    roc_axis, pr_axis = axes
    colors = model_colors(list(runs))
    positive_rates = []
    for model, by_seed in runs.items():
        seed_curves = (ClassificationCurves.of(scored_labels(predictions, task)) for predictions in by_seed.values())
        curves = [curve for curve in seed_curves if curve is not None]
        if not curves:
            continue
        mean_auroc = np.mean([curve.auroc for curve in curves])
        mean_precision = np.mean([curve.average_precision for curve in curves])
        for position, curve in enumerate(curves):
            style = {"color": colors[model], "alpha": SEED_ALPHA, "linewidth": 1.3}
            first = position == 0
            roc_axis.plot(curve.false_positive_rate, curve.true_positive_rate, **style,
                          label=f"{model} (AUROC {mean_auroc:.3f}, {len(curves)} seeds)" if first else None)
            pr_axis.step(curve.recall, curve.precision, where="post", **style,
                         label=f"{model} (AP {mean_precision:.3f})" if first else None)
            positive_rates.append(curve.positive_rate)
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test fold", xlim=(0, 1), ylim=(0, 1.01))
    if positive_rates:
        pr_axis.axhline(float(np.mean(positive_rates)), color="grey", linestyle=":", linewidth=1, label="positive rate")
    pr_axis.set(xlabel="recall", ylabel="precision", title="precision-recall, test fold", xlim=(0, 1), ylim=(0, 1.01))
    roc_axis.legend(fontsize=7, loc="lower right")
    pr_axis.legend(fontsize=7, loc="upper right")


def draw_parity(axis: Axes, runs: Mapping[str, Mapping[int, pd.DataFrame]], task: TaskSpec) -> None:
    colors = model_colors(list(runs))
    limits = []
    for model, by_seed in runs.items():
        for position, predictions in enumerate(by_seed.values()):
            measured, predicted = measured_and_predicted(predictions, task)
            limits += [measured.min(initial=np.inf), measured.max(initial=-np.inf), predicted.min(initial=np.inf), predicted.max(initial=-np.inf)]
            axis.scatter(measured, predicted, s=8, color=colors[model], alpha=SEED_ALPHA, label=model if position == 0 else None)
    finite = [value for value in limits if np.isfinite(value)]
    if finite:
        axis.plot([min(finite), max(finite)], [min(finite), max(finite)], color="grey", linestyle=":", linewidth=1)
        axis.legend(fontsize=7)
    axis.set(xlabel="measured", ylabel="predicted", title=f"test fold: {', '.join(task.label_columns)}")


def test_curves_figure(runs: Runs) -> Figure:
    """ROC and precision-recall curves (classification) or predicted vs measured (regression) of every model,
    each seed a faint line."""
    spec, task, split = runs.task, runs.task.name, runs.split
    predictions = runs.predictions()
    if spec.type is TaskType.REGRESSION:
        figure = Figure(figsize=(5.5, 5))
        axis = figure.subplots()
        draw_parity(axis, predictions, spec)
    else:
        figure = Figure(figsize=(11, 4.8))
        axes = figure.subplots(1, 2)
        draw_classification_curves((axes[0], axes[1]), predictions, spec)
    averaged = {TaskType.MULTILABEL: ", macro-averaged over labels", TaskType.MULTICLASS: ", classes one-vs-rest, macro-averaged"}
    figure.suptitle(f"{task} / {split}{averaged.get(spec.type, '')}", fontsize=11)
    figure.tight_layout()
    return figure


def learning_curves_figure(runs: Runs) -> Figure:
    """Training loss, validation loss and validation metric per epoch of every transformer and seed; a dot marks
    the epoch whose weights were kept."""
    histories = runs.histories()
    task, split = runs.task.name, runs.split
    metric = metric_label(VALIDATION_METRIC[runs.task.type])
    figure = Figure(figsize=(13, 4))
    axes = figure.subplots(1, 3)
    colors = model_colors(list(histories))
    columns = (("train_loss", "training loss"), ("valid_loss", "validation loss"), ("valid_metric", f"validation {metric}"))
    for model, by_seed in histories.items():
        for position, (history, best_epoch) in enumerate(by_seed.values()):
            for axis, (column, _) in zip(axes, columns):
                axis.plot(history["epoch"], history[column], color=colors[model], alpha=SEED_ALPHA, marker=".", markersize=3,
                          label=f"{model} ({len(by_seed)} seeds)" if position == 0 else None)
            best = history[history["epoch"] == best_epoch]
            axes[2].plot(best["epoch"], best["valid_metric"], "o", color=colors[model], markersize=6)
    for axis, (_, title) in zip(axes, columns):
        axis.set(xlabel="epoch", title=title)
        axis.legend(fontsize=7)
    figure.suptitle(f"{task} / {split}: fine-tuning (dots: the epoch kept)", fontsize=11)
    figure.tight_layout()
    return figure


def write_task_figures(
    task: TaskSpec, split: str, checkpoints: list[str], baselines: list[str], seeds: list[int], inputs: Iterable[str],
    curves_png: str | Path, learning_png: str | Path, root: str | Path = ".",
) -> None:
    """The test-curves and learning-curves PNGs of one task and split, from the files in `inputs` (relative to `root`)
    alone."""
    runs = Runs(task, split, tuple(checkpoints), tuple(baselines), tuple(seeds), DeclaredInputs(inputs, root))
    save_figure(test_curves_figure(runs), curves_png)
    save_figure(learning_curves_figure(runs), learning_png)
    logger.info("%s / %s: figures for models %s, seeds %s", task.name, split, ", ".join([*checkpoints, *baselines]), seeds)
