"""Figures of one task and split: test-set curves of every model and the fine-tuning learning curves."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

from chemlm.io import atomic_path, read_csv
from chemlm.report.results import VALIDATION_METRIC, StudyResults, metric_label, read_json_file
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

SEED_ALPHA = 0.55
DPI = 110


def model_colors(models: list[str]) -> dict[str, Any]:
    palette = matplotlib.colormaps["tab10"].colors
    return {model: palette[index % len(palette)] for index, model in enumerate(models)}


def read_predictions(path: Path, task: TaskSpec) -> pd.DataFrame:
    # Class names are text (as evaluate reads them), so "1" and 1.0 don't get mixed up.
    text = {label_header(task.label_columns[0]): str} if task.type is TaskType.MULTICLASS else {}
    return read_csv(path, dtype={"mol_id": str, "fold": str, **text})


def scored_labels(predictions: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """0/1 truths and scores of the test fold, pooled over labels (multi-label) or over classes one-vs-rest
    (multi-class); molecules missing a label are left out for that label."""
    test = predictions[predictions["fold"] == "test"]
    if task.type is TaskType.MULTICLASS:
        classes = [column.removeprefix(prediction_header("")) for column in test.columns if column.startswith(prediction_header(""))]
        truth = test[label_header(task.label_columns[0])]
        present = truth.notna().to_numpy()
        onehot = np.column_stack([(truth.astype(str).str.strip() == name).to_numpy(float) for name in classes])
        scores = test[[prediction_header(name) for name in classes]].to_numpy(float)
        return onehot[present].ravel(), scores[present].ravel()
    truth = test[[label_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    scores = test[[prediction_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    present = ~np.isnan(truth)
    return truth[present], scores[present]


def measured_and_predicted(predictions: pd.DataFrame, task: TaskSpec) -> tuple[np.ndarray, np.ndarray]:
    """Regression: test-fold truths and predictions, pooled over labels, missing truths left out."""
    test = predictions[predictions["fold"] == "test"]
    truth = test[[label_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    predicted = test[[prediction_header(label) for label in task.label_columns]].to_numpy(float).ravel()
    present = ~np.isnan(truth)
    return truth[present], predicted[present]


def run_predictions(results: StudyResults, task: str, split: str) -> dict[str, dict[int, pd.DataFrame]]:
    """Predictions of every model and seed with a predictions file, by model and seed."""
    found: dict[str, dict[int, pd.DataFrame]] = {}
    for model in results.models(task, split):
        for seed in results.seeds(task, model, split):
            path = results.run_dir(task, model, split, seed) / "predictions.csv"
            if path.is_file():
                found.setdefault(model, {})[seed] = read_predictions(path, results.tasks[task])
    return found


@dataclass(frozen=True)
class ClassificationCurves:
    """ROC and precision-recall curves of one run's test fold."""

    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    auroc: float
    average_precision: float
    positive_rate: float

    @classmethod
    def of(cls, truth: np.ndarray, scores: np.ndarray) -> ClassificationCurves | None:
        """None when the test fold holds one class only: the curves are undefined."""
        if len(np.unique(truth)) < 2:
            return None
        false_positive_rate, true_positive_rate, _ = roc_curve(truth, scores)
        precision, recall, _ = precision_recall_curve(truth, scores)
        return cls(
            false_positive_rate, true_positive_rate, precision, recall,
            auroc=float(auc(false_positive_rate, true_positive_rate)),
            average_precision=float(average_precision_score(truth, scores)),
            positive_rate=float(truth.mean()),
        )


def draw_classification_curves(axes: tuple[Axes, Axes], runs: Mapping[str, Mapping[int, pd.DataFrame]], task: TaskSpec) -> None:
    roc_axis, pr_axis = axes
    colors = model_colors(list(runs))
    positive_rates = []
    for model, by_seed in runs.items():
        seed_curves = (ClassificationCurves.of(*scored_labels(predictions, task)) for predictions in by_seed.values())
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


def empty_figure(message: str) -> Figure:
    figure = Figure(figsize=(6, 1.2))
    axis = figure.subplots()
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center", fontsize=10)
    return figure


def test_curves_figure(results: StudyResults, task: str, split: str) -> Figure:
    """ROC and precision-recall curves (classification) or predicted vs measured (regression) of every model,
    each seed a faint line."""
    spec = results.tasks[task]
    runs = run_predictions(results, task, split)
    if not runs:
        return empty_figure(f"{task} / {split}: no predictions files")
    if spec.type is TaskType.REGRESSION:
        figure = Figure(figsize=(5.5, 5))
        axis = figure.subplots()
        draw_parity(axis, runs, spec)
    else:
        figure = Figure(figsize=(11, 4.8))
        axes = figure.subplots(1, 2)
        draw_classification_curves((axes[0], axes[1]), runs, spec)
    pooled = {TaskType.MULTILABEL: ", pooled over labels", TaskType.MULTICLASS: ", classes one-vs-rest pooled"}
    figure.suptitle(f"{task} / {split}{pooled.get(spec.type, '')}", fontsize=11)
    figure.tight_layout()
    return figure


def read_histories(results: StudyResults, task: str, split: str) -> dict[str, dict[int, tuple[pd.DataFrame, int | None]]]:
    """Fine-tuning histories with the best epoch from run.json (None without it), by transformer and seed."""
    found: dict[str, dict[int, tuple[pd.DataFrame, int | None]]] = {}
    for model in results.models(task, split):
        if results.is_baseline(model):
            continue
        for seed in results.seeds(task, model, split):
            run_dir = results.run_dir(task, model, split, seed)
            if (run_dir / "history.csv").is_file():
                run_json = run_dir / "run.json"
                best_epoch = read_json_file(run_json).get("best_epoch") if run_json.is_file() else None
                found.setdefault(model, {})[seed] = (read_csv(run_dir / "history.csv"), best_epoch)
    return found


def learning_curves_figure(results: StudyResults, task: str, split: str) -> Figure:
    """Training loss, validation loss and validation metric per epoch of every transformer and seed; a dot marks
    the epoch whose weights were kept."""
    histories = read_histories(results, task, split)
    if not histories:
        return empty_figure(f"{task} / {split}: no fine-tuning histories")
    metric = metric_label(VALIDATION_METRIC[results.tasks[task].type])
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


def save_figure(figure: Figure, path: str | Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)


def write_task_figures(
    config: Mapping[str, Any], summary_csv: str | Path, per_seed_csv: str | Path, task: str, split: str,
    curves_png: str | Path, learning_png: str | Path,
) -> None:
    """The test-curves and learning-curves PNGs of one task and split."""
    results = StudyResults.load(config, summary_csv, per_seed_csv)
    save_figure(test_curves_figure(results, task, split), curves_png)
    save_figure(learning_curves_figure(results, task, split), learning_png)
    logger.info("%s / %s: figures for models %s", task, split, ", ".join(results.models(task, split)))
