"""The hyper-parameter search of one task and split: each checkpoint's trials (validation metric against each
searched setting, the chosen trial marked) in one figure."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from chemlm import layout
from chemlm.report.figures import save_figure
from chemlm.report.results import VALIDATION_METRIC, DeclaredInputs, metric_label, read_json_file
from chemlm.tasks import TaskSpec

logger = logging.getLogger(__name__)


def searched_settings(best: dict) -> list[str]:
    """The settings that differ between trials: the searched ones."""
    trials = best["trials"]
    return [name for name in trials[0]["params"] if len({repr(trial["params"][name]) for trial in trials}) > 1]


def write_search_figure(task: TaskSpec, split: str, checkpoints: list[str], inputs: Iterable[str], figure_png: str | Path, root: str | Path = ".") -> None:
    files = DeclaredInputs(inputs, root)
    searches = {checkpoint: read_json_file(files(layout.search_file("best.json", task.name, checkpoint, split))) for checkpoint in checkpoints}
    names = list(dict.fromkeys(name for best in searches.values() for name in searched_settings(best)))
    figure = Figure(figsize=(3.2 * max(1, len(names)), 2.8 * len(searches)))
    axes = np.atleast_2d(figure.subplots(len(searches), max(1, len(names)), squeeze=False))
    metric = metric_label(VALIDATION_METRIC[task.type])
    for row, (checkpoint, best) in enumerate(searches.items()):
        for column, name in enumerate(names):
            axis = axes[row, column]
            values = [trial["params"][name] for trial in best["trials"]]
            scores = [trial["valid_metric"] for trial in best["trials"]]
            numeric = all(isinstance(value, (int, float)) for value in values)
            positions = values if numeric else [str(value) for value in values]
            axis.scatter(positions, scores, s=18, color="#4c72b0")
            axis.scatter([positions[best["trial"]]], [best["valid_metric"]], s=60, facecolors="none", edgecolors="#d62728", label="chosen")
            if name == "learning_rate":
                axis.set_xscale("log")
            axis.set(xlabel=name, ylabel=f"{checkpoint}: validation {metric}" if column == 0 else None)
            axis.tick_params(labelsize=7)
        axes[row, 0].legend(fontsize=7)
    figure.suptitle(f"{task.name} / {split}: search trials, scored on the validation fold", fontsize=11)
    figure.tight_layout()
    save_figure(figure, figure_png)
    logger.info("%s / %s: search figure of %s", task.name, split, ", ".join(checkpoints))
