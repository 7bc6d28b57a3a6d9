"""The comparison's figures and tables (chemlm.comparison computes them): for one metric, every pair's simultaneous
confidence interval, the guidelines' heat map of mean differences with significance stars, and box plots of each
model over the split instances; across tasks, the models' ranks and a critical-difference diagram. Used by the
workflow's compare rule and by `chemlm compare` on results made elsewhere."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from chemlm.comparison import (
    CONOVER,
    NO_TEST,
    PAIR_COLUMNS,
    MethodComparison,
    RankSummary,
    compare_methods,
    compare_metrics,
    higher_is_better,
    p_text,
    rank_models,
)
from chemlm.config import CompareSettings
from chemlm.evaluate import SPREAD
from chemlm.io import InputError, read_csv, write_csv
from chemlm.report.tables import save_figure
from chemlm.tasks import TaskSpec, TaskType

logger = logging.getLogger(__name__)

# What the workflow compares per task type: the guidelines' headline metrics (thresholds and counts are not compared);
# the first is the task's headline metric unless `report.metric` names another of them.
COMPARED_METRICS = {
    TaskType.BINARY: ("auroc", "auprc", "mcc@valid"),
    TaskType.MULTILABEL: ("auroc", "auprc"),
    TaskType.MULTICLASS: ("macro_f1", "accuracy", "balanced_accuracy"),
    TaskType.REGRESSION: ("rmse", "mae", "r2"),
}
STUDY_COLUMNS = ["task", "split", *PAIR_COLUMNS, "not_learned"]


def file_name(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", metric)


def stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def draw_intervals(axis: Axes, comparison: MethodComparison, label: str) -> None:
    """Every pair's mean difference with its simultaneous interval (Tukey); the practical threshold dashed."""
    pairs = comparison.pairs
    positions = np.arange(len(pairs))[::-1]
    differences = np.array([pair.mean_difference for pair in pairs])
    for position, pair in zip(positions, pairs):
        color = "#c0392b" if pair.matters else "#1f77b4" if pair.significant else "#7f7f7f"
        if not math.isnan(pair.lower):
            axis.errorbar(pair.mean_difference, position, xerr=[[pair.mean_difference - pair.lower], [pair.upper - pair.mean_difference]],
                          fmt="o", color=color, capsize=4)
        else:
            axis.plot(pair.mean_difference, position, "o", color=color)
    axis.axvline(0, color="black", linewidth=1)
    if comparison.min_difference is not None:
        for sign in (-1, 1):
            axis.axvline(sign * comparison.min_difference, color="#c0392b", linestyle="--", linewidth=0.8)
    axis.set_yticks(positions, [f"{pair.first} − {pair.second}" for pair in pairs], fontsize=8)
    kind = f"simultaneous {1 - comparison.alpha:.0%} intervals (Tukey HSD)" if comparison.test != CONOVER else "Conover p values, no intervals"
    axis.set(xlabel=f"difference in {label}", title=f"Pairs: {kind}")
    axis.title.set_fontsize(9)
    if len(differences):
        reach = max(float(np.nanmax(np.abs([[pair.lower, pair.upper] for pair in pairs]))) if comparison.test != CONOVER else 0.0,
                    float(np.abs(differences).max()), comparison.min_difference or 0.0) * 1.15 or 1.0
        axis.set_xlim(-reach, reach)


def draw_heat_map(axis: Axes, comparison: MethodComparison, label: str) -> None:
    """Row − column mean differences, stars for the adjusted p value; the colour scale ends at twice the practical
    threshold, as in the guidelines' `mcs_plot` (red: the row model is better)."""
    differences = comparison.difference_matrix()
    p_values = comparison.p_matrix()
    oriented = differences if comparison.higher_is_better else -differences
    limit = 2 * comparison.min_difference if comparison.min_difference else max(float(np.abs(oriented.to_numpy()).max()), 1e-12)
    image = axis.imshow(oriented.to_numpy(), cmap="coolwarm", vmin=-limit, vmax=limit)
    methods = comparison.methods
    for row, first in enumerate(methods):
        for column, second in enumerate(methods):
            if row != column:
                text = f"{differences.loc[first, second]:+.3f}{stars(p_values.loc[first, second])}"
                axis.text(column, row, text, ha="center", va="center", fontsize=7)
    means = comparison.means
    ticks = [f"{method}\n{means[method]:.3f}" for method in methods]
    axis.set_xticks(range(len(methods)), ticks, fontsize=7)
    axis.set_yticks(range(len(methods)), ticks, fontsize=7)
    axis.set_title("Mean differences (row − column); * p<0.05 ** p<0.01 *** p<0.001", fontsize=9)
    axis.figure.colorbar(image, ax=axis, shrink=0.8, label=f"{label}: row better →" if comparison.higher_is_better
                         else f"{label}: row better (lower) →")


def draw_boxes(axis: Axes, comparison: MethodComparison, label: str) -> None:
    """Each model's metric over the split instances, lines joining the same instance."""
    values = comparison.values
    axis.boxplot([values[method].to_numpy() for method in comparison.methods], tick_labels=comparison.methods, showfliers=False)
    for _, row in values.iterrows():
        axis.plot(range(1, len(row) + 1), row.to_numpy(), color="#7f7f7f", alpha=0.25, linewidth=0.7)
    for index, method in enumerate(comparison.methods, start=1):
        axis.plot(np.full(len(values), index), values[method].to_numpy(), "o", color="#1f77b4", markersize=3, alpha=0.7)
    omnibus = "Friedman" if comparison.test == CONOVER else "rm-ANOVA"
    axis.set(ylabel=label, title=f"{comparison.subjects} split instances; {omnibus} {p_text(comparison.omnibus_p)}")
    axis.title.set_fontsize(9)
    axis.tick_params(axis="x", labelsize=7, rotation=20)


def comparison_figure(comparison: MethodComparison, label: str, title: str) -> Figure:
    if comparison.test == NO_TEST:
        figure = Figure(figsize=(6, 4))
        axis = figure.subplots()
        if comparison.subjects and comparison.methods:
            draw_boxes(axis, comparison, label)
        axis.set_title(f"{title}\n{comparison.reason}: no test", fontsize=9)
        figure.tight_layout()
        return figure
    figure = Figure(figsize=(17, 4.8))
    axes = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.1, 1.2, 1]})
    draw_intervals(axes[0], comparison, label)
    draw_heat_map(axes[1], comparison, label)
    draw_boxes(axes[2], comparison, label)
    figure.suptitle(f"{title}: {label} ({comparison.test}; practical threshold "
                    f"{comparison.min_difference if comparison.min_difference is not None else 'none'})", fontsize=11)
    figure.tight_layout()
    return figure


def rank_figure(summary: RankSummary, title: str) -> Figure:
    """The critical-difference diagram of mean ranks over tasks (bars join models Conover's test cannot tell apart);
    without a test, the mean ranks alone."""
    figure = Figure(figsize=(9, 2.2 + 0.25 * summary.ranks.shape[1]))
    axis = figure.subplots()
    mean_ranks = summary.mean_ranks
    if summary.p_values is None:
        axis.barh(list(mean_ranks.index)[::-1], list(mean_ranks.to_numpy())[::-1], color="#1f77b4")
        axis.set(xlabel="mean rank (1 = best)", title=f"{title}: {len(summary.ranks)} tasks, too few for a test")
    else:
        import scikit_posthocs

        scikit_posthocs.critical_difference_diagram(mean_ranks, summary.p_values, ax=axis)
        axis.set_title(f"{title}: mean rank over {len(summary.ranks)} tasks (1 = best); Friedman {p_text(summary.friedman_p)}; "
                       "bars join models Conover's test (Holm) does not tell apart", fontsize=9)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------------------------------------------
# `chemlm compare`: results made elsewhere


def compare_table(
    table_path: Path, output_dir: Path, group_column: str, subject_column: str, metrics: Sequence[str],
    min_difference: Mapping[str, float] | None = None, lower_is_better: Sequence[str] = (), alpha: float = 0.05,
) -> list[MethodComparison]:
    """A long CSV (one row per method and split instance, one column per metric, as the guidelines' notebooks keep
    them) compared metric by metric: output_dir gets comparison.csv (every pair) and <metric>.png, and each metric's
    verdict goes to the log."""
    table = read_csv(table_path)
    missing = [column for column in (group_column, subject_column, *metrics) if column not in table.columns]
    if missing:
        raise InputError(f"{table_path}: no column '{missing[0]}' (columns: {', '.join(map(str, table.columns))})")
    long = table.melt(id_vars=[group_column, subject_column], value_vars=list(metrics), var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    comparisons = compare_metrics(long, metrics, group=group_column, subject=subject_column, min_difference=min_difference,
                                  alpha=alpha, lower_is_better=lower_is_better)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_csv(pd.concat([comparison.pair_table() for comparison in comparisons], ignore_index=True), output_dir / "comparison.csv")
    for comparison in comparisons:
        save_figure(comparison_figure(comparison, comparison.metric, table_path.name), output_dir / f"{file_name(comparison.metric)}.png")
        logger.info("%s", comparison.verdict())
    return comparisons


# ---------------------------------------------------------------------------------------------------
# The workflow's comparison: every task and split, over its split instances


def headline_metric(task: TaskSpec, preferred: str) -> str:
    """`preferred` (config `report.metric`) where the task type has it, else the type's first compared metric."""
    compared = COMPARED_METRICS[task.type]
    return preferred if preferred in compared else compared[0]


def threshold_for(metric: str, settings: CompareSettings) -> float | None:
    """The practical threshold of a metric, by its name or its name before '@' (mcc@valid: mcc's)."""
    return settings.min_difference.get(metric, settings.min_difference.get(metric.split("@")[0]))


def not_learned_models(per_instance: pd.DataFrame, task: str, split: str, settings: CompareSettings) -> dict[str, str]:
    """Models whose test predictions barely vary (spread below the threshold) in most split instances, with why."""
    rows = per_instance[(per_instance["task"] == task) & (per_instance["split"] == split) & (per_instance["metric"] == SPREAD)]
    flagged = {}
    for model, spreads in rows.groupby("checkpoint", sort=False)["value"]:
        low = int((spreads < settings.not_learned_spread).sum())
        if low * 2 > len(spreads):
            flagged[str(model)] = (f"test predictions nearly constant in {low} of {len(spreads)} split instances: spread "
                                   f"{spreads.median():.2g} < {settings.not_learned_spread:g}")
    return flagged


def study_comparisons(
    per_instance: pd.DataFrame, tasks: Mapping[str, TaskSpec], splits: Sequence[str], settings: CompareSettings,
) -> dict[tuple[str, str, str], MethodComparison]:
    """(task, split, metric) -> every pair of models over the split instances (metrics.csv's instances), for the metrics
    the task type compares."""
    comparisons = {}
    for task, spec in tasks.items():
        for split in splits:
            rows = per_instance[(per_instance["task"] == task) & (per_instance["split"] == split)]
            for metric in COMPARED_METRICS[spec.type]:
                values = rows[rows["metric"] == metric]
                if not values.empty:
                    comparisons[(task, split, metric)] = compare_methods(
                        values, metric, group="checkpoint", subject="instance", value="value",
                        min_difference=threshold_for(metric, settings), alpha=settings.alpha,
                    )
    return comparisons


def headline_ranks(
    comparisons: Mapping[tuple[str, str, str], MethodComparison], tasks: Mapping[str, TaskSpec], splits: Sequence[str],
    preferred: str,
) -> RankSummary:
    """Each model's rank on each task and split by the mean of its headline metric."""
    columns = {}
    directions = {}
    for task, spec in tasks.items():
        metric = headline_metric(spec, preferred)
        for split in splits:
            comparison = comparisons.get((task, split, metric))
            if comparison is not None:
                columns[f"{task} / {split}"] = comparison.means
                directions[f"{task} / {split}"] = higher_is_better(metric)
    return rank_models(pd.DataFrame(columns).T, directions)


def write_study_comparison(
    per_instance_csv: str | Path, tasks: Mapping[str, TaskSpec], splits: Sequence[str], settings: CompareSettings,
    preferred: str, comparison_csv: str | Path, figures: Mapping[tuple[str, str], str | Path], ranks_png: str | Path | None,
) -> None:
    """comparison.csv (every pair, task, split and compared metric), a figure of the headline metric per task and
    split, and, with several tasks or splits, the ranks' critical-difference diagram."""
    per_instance = read_csv(per_instance_csv, dtype={"task": str, "checkpoint": str, "split": str, "instance": str, "metric": str})
    comparisons = study_comparisons(per_instance, tasks, splits, settings)
    flagged_by_run = {(task, split): not_learned_models(per_instance, task, split, settings) for task in tasks for split in splits}
    tables = []
    for (task, split, metric), comparison in comparisons.items():
        flagged = flagged_by_run[(task, split)]
        table = comparison.pair_table()
        table.insert(0, "split", split)
        table.insert(0, "task", task)
        table["not_learned"] = [", ".join(name for name in (first, second) if name in flagged)
                                for first, second in zip(table["first"], table["second"])]
        tables.append(table)
        logger.info("%s / %s: %s", task, split, comparison.verdict(metric, flagged))
    write_csv(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=STUDY_COLUMNS), comparison_csv)
    for (task, split), path in figures.items():
        metric = headline_metric(tasks[task], preferred)
        comparison = comparisons.get((task, split, metric))
        if comparison is None:
            raise InputError(f"{per_instance_csv}: no {metric} values of task '{task}', split '{split}'")
        save_figure(comparison_figure(comparison, metric, f"{task} / {split}"), path)
    if ranks_png is not None:
        save_figure(rank_figure(headline_ranks(comparisons, tasks, splits, preferred), "Models across tasks"), ranks_png)
