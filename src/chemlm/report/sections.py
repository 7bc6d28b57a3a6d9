"""The report's sections, one function each, built from the result files its rules declare. A section that does
not apply to the study (no pre-training, no pair to compare) is left out; one whose file is absent says so."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chemlm import layout
from chemlm.config import ReportSettings
from chemlm.evaluate import instance_order
from chemlm.io import read_csv
from chemlm.comparison import NO_TEST, MethodComparison, Pair, higher_is_better, p_text
from chemlm.report.comparison import headline_ranks
from chemlm.report.results import (
    Stat,
    StudyResults,
    metric_label,
    read_json_file,
)
from chemlm.report.tables import (
    MISSING,
    Table,
    bullet_list,
    details,
    heading,
    note,
    number,
    paragraph,
    png_figure,
)
from chemlm.report.search import searched_settings
from chemlm.scoring import ranking_ties, top_predictions
from chemlm.splits import BALANCE
from chemlm.tasks import TaskSpec, TaskType

EXAMPLE_ROWS = 20


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str


# ---------------------------------------------------------------------------------------------------
# Overview: task x model, the published references, and what the numbers say


@dataclass(frozen=True)
class Column:
    """One column of the overview: a task, a split and the metric it is judged by."""

    task: str
    split: str
    metric: str

    def header(self) -> str:
        arrow = "↑" if higher_is_better(self.metric) else "↓"
        return f"{self.task} · {self.split} · {metric_label(self.metric)} {arrow}"


def overview_columns(results: StudyResults, settings: ReportSettings) -> list[Column]:
    return [
        Column(task, split, results.metric_for(task, settings.metric))
        for task in results.tasks
        for split in results.splits
        if results.models(task, split)
    ]


def is_published_column(column: Column, settings: ReportSettings) -> bool:
    return (column.task, column.split, column.metric) == (settings.published_task, settings.published_split, settings.metric)


def published_references(results: StudyResults, settings: ReportSettings) -> dict[str, float]:
    """The published references, when the study has their task and split (a study without HIV shows none)."""
    if settings.published_task in results.tasks and settings.published_split in results.splits:
        return settings.published
    return {}


def column_stats(results: StudyResults, column: Column) -> dict[str, Stat]:
    found = {model: results.stat(column.task, model, column.split, column.metric) for model in results.models(column.task, column.split)}
    return {model: stat for model, stat in found.items() if stat is not None}


def overview_table(results: StudyResults, settings: ReportSettings) -> Table:
    """Mean ± sd over split instances per model and column, no model marked best (the comparison section says which
    differences are real), published values as reference rows."""
    columns = overview_columns(results, settings)
    rows, row_classes = [], []
    for model in results.models():
        stats_by_column = [results.stat(column.task, model, column.split, column.metric) for column in columns]
        kind = "baseline" if results.is_baseline(model) else "fine-tuned"
        if results.is_baseline(model) and results.study.baseline_search(model) is not None:
            kind += ", settings searched"
        elif not results.is_baseline(model) and any(results.study.searched(task, model) for task in results.tasks):
            kind += ", settings searched"
        unlearned = [f"{column.task} / {column.split}" for column in columns if model in results.not_learned(column.task, column.split)]
        if unlearned:
            kind += f"; has not learned on {', '.join(unlearned)}"
        rows.append([model, kind, *(stat.text() if stat else MISSING for stat in stats_by_column)])
        row_classes.append("baseline" if results.is_baseline(model) else "")
    for name, value in published_references(results, settings).items():
        reference = [f"{value:.3f}" if is_published_column(column, settings) else MISSING for column in columns]
        # a bare number is a published single run (the ChemBERTa-2 paper's); a sourced one says what it is
        source = settings.published_sources.get(name)
        label, kind = (f"{name} (published: {source})", "reference") if source else (f"{name} (published)", "single run, reference")
        rows.append([label, kind, *reference])
        row_classes.append("reference")
    return Table(["model", "kind", *(column.header() for column in columns)], rows, frozenset(), row_classes, "overview")


def compared(first: float, second: float, metric: str) -> str:
    """'better than', 'worse than' or 'level with' (equal to three decimals): `first` against `second`."""
    if math.isclose(first, second, abs_tol=5e-4):
        return "level with"
    return "better than" if (first > second) == higher_is_better(metric) else "worse than"


def column_comparison(results: StudyResults, column: Column) -> MethodComparison | None:
    return results.comparisons.get((column.task, column.split, column.metric))


def column_statements(results: StudyResults, column: Column) -> list[str]:
    """What the comparison of the column's models over its split instances says: a better model only where the
    difference is significant and at least the practical threshold."""
    comparison = column_comparison(results, column)
    where = f"{column.task} / {column.split}"
    if comparison is None:
        return [f"{where} ({metric_label(column.metric)}): no results."]
    return [f"{where}: {comparison.verdict(metric_label(column.metric), results.not_learned(column.task, column.split))}"]


def published_statements(results: StudyResults, settings: ReportSettings) -> list[str]:
    """Our seeds against the published values, on the published task, split and metric."""
    published = published_references(results, settings)
    if not published:
        return []
    column = Column(settings.published_task, settings.published_split, settings.metric)
    found = column_stats(results, column)
    if not found:
        return []
    statements = []
    for name, value in published.items():
        stat = found.get(name)
        if stat is None:
            statements.append(f"{name} (published {value:.3f}) was not run here.")
            continue
        spread = ""
        if stat.n > 1 and not math.isnan(stat.sd):
            spread = "; within one sd of our seeds" if abs(stat.mean - value) <= stat.sd else "; more than one sd of our seeds away"
        what = settings.published_sources.get(name, "single run")
        statements.append(f"{name}: {stat.inline()} here against {value:.3f} published ({what}), difference {stat.mean - value:+.3f}{spread}.")
    choose = max if higher_is_better(settings.metric) else min
    best_name = choose(published, key=lambda name: published[name])
    best_value = published[best_name]
    beating = [model for model, stat in found.items() if compared(stat.mean, best_value, settings.metric) == "better than"]
    if beating:
        statements.append(
            f"Models here that score better than the best published run ({best_name} {best_value:.3f}): "
            + ", ".join(f"{model} ({found[model].mean:.3f})" for model in beating) + "."
        )
    else:
        statements.append(f"No model here scores better than the best published run ({best_name} {best_value:.3f}).")
    return statements


def comparison_statements(results: StudyResults, settings: ReportSettings) -> list[str]:
    statements = published_statements(results, settings)
    for column in overview_columns(results, settings):
        statements += column_statements(results, column)
    return statements


# How each baseline is trained, and where it cannot do as fine-tuning does (the report's methods line).
BASELINE_METHODS = {
    "ecfp4_rf": "ecfp4_rf: a random forest on ECFP4 bits (radius 2, 2,048), balanced class weights.",
    "ecfp4_logreg": "ecfp4_logreg: a logistic regression (ridge for regression) on ECFP4 bits, balanced class weights.",
    "lgbm": ("lgbm: LightGBM on ECFP4 counts and 199 RDKit descriptors, one model per label, balanced class weights, "
             "boosting stopped on the validation fold (AUROC, RMSE; log loss for multi-class, where fine-tuning stops on macro-F1)."),
    "chemprop": ("chemprop: chemprop's D-MPNN, trained with chemprop's Adam and warm-up/decay schedule rather than fine-tuning's "
                 "AdamW; a binary label is one sigmoid output with positives weighted by negatives / positives (fine-tuning's "
                 "two-class head weights both classes, the same balance); chemprop leaves out a last training batch of one "
                 "molecule in an epoch; early stopping on fine-tuning's validation metric, the best epoch kept."),
}


def baseline_methods(baselines: tuple[str, ...]) -> str:
    """The methods line for the study's baselines; empty without any."""
    return " ".join(BASELINE_METHODS[baseline] for baseline in baselines)


def overview_section(results: StudyResults, settings: ReportSettings) -> Section:
    table = overview_table(results, settings)
    methods = baseline_methods(results.study.baselines)
    body = (
        paragraph("Test-fold metric per task and split: mean ± sample sd over the split instances (n = instances). No model "
                  "is marked best: which differences are real, and large enough to matter, is the comparison's to say (below "
                  "and in the next section). Published values (single runs unless their row names a source) are shown for reference.")
        + (paragraph(f"Baselines, on the same split instances and seeds: {methods}") if methods else "")
        + table.html()
        + heading("How the numbers compare")
        + bullet_list(comparison_statements(results, settings))
        + details("All test metrics (mean ± sd over split instances)", all_metrics_tables(results))
    )
    return Section("overview", "Overview", body)


def all_metrics_tables(results: StudyResults) -> str:
    """Every summary metric except per-label and per-class ones, per task and split."""
    parts = []
    for task in results.tasks:
        for split in results.splits:
            rows = results.summary[(results.summary["task"] == task) & (results.summary["split"] == split)]
            rows = rows[~rows["metric"].str.contains(r"\[", regex=True)]
            if rows.empty:
                continue
            metrics = list(dict.fromkeys(rows["metric"]))
            models = results.models(task, split)
            cells = [
                [model, *(stat.text() if (stat := results.stat(task, model, split, metric)) else MISSING for metric in metrics)]
                for model in models
            ]
            parts.append(heading(f"{task} / {split}", 4) + Table(["model", *metrics], cells).html())
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------
# Every pair of models over the split instances, and across tasks


def pair_rows(comparison: MethodComparison) -> Table:
    rows = [
        [pair.first, pair.second, f"{pair.mean_difference:+.3f}",
         MISSING if math.isnan(pair.lower) else f"[{pair.lower:+.3f}, {pair.upper:+.3f}]",
         MISSING if math.isnan(pair.p_adjusted) else f"{pair.p_adjusted:.3g}",
         "yes" if pair.significant else "no", "yes" if pair.matters else "no"]
        for pair in comparison.pairs
    ]
    return Table(["first", "second", "mean difference", f"simultaneous {1 - comparison.alpha:.0%} interval", "adjusted p", "significant",
                  "matters"], rows)


def comparison_section(results: StudyResults, settings: ReportSettings) -> Section:
    study = results.study
    body = paragraph(
        "Every pair of models compared over the same split instances, as the method-comparison guidelines ask (Ash et al., "
        "J. Chem. Inf. Model. 2025): repeated-measures ANOVA with the split instance as the block, then Tukey's HSD for every "
        "pair with the ANOVA's residual error (simultaneous intervals, family-wise alpha "
        f"{study.compare.alpha:g}); where Levene's test or the variance ratio (above 3) fails, Friedman's test and Conover's "
        "post-hoc test with Holm's correction. A difference matters when it is significant and at least the metric's practical "
        "threshold (" + ", ".join(f"{metric_label(name)} {value:g}" for name, value in study.compare.min_difference.items())
        + f"). A model whose test predictions barely vary (spread below {study.compare.not_learned_spread:g}: the sd of the "
        "logits over test molecules, or for regression of the predictions over that of the truths) has not learned, and is "
        "named as such. Every pair of every compared metric is in results/comparison.csv."
    )
    columns = overview_columns(results, settings)
    for column in columns:
        comparison = column_comparison(results, column)
        body += heading(f"{column.task} / {column.split}: {metric_label(column.metric)}")
        figure = results.files(layout.report_figure(column.task, column.split, "comparison"))
        if figure.is_file():
            body += png_figure(figure, f"{column.task} / {column.split}: every pair of models, {metric_label(column.metric)}")
        else:
            body += note(f"{layout.report_figure(column.task, column.split, 'comparison')} is missing.")
        if comparison is None:
            body += note("No results.")
            continue
        body += paragraph(comparison.verdict(metric_label(column.metric), results.not_learned(column.task, column.split)))
        if comparison.left_out:
            body += note(f"Split instances left out, without a result for every model: {', '.join(comparison.left_out)}.")
        if comparison.pairs:
            body += details(f"Every pair ({comparison.test})", pair_rows(comparison).html())
    if len(columns) > 1:
        body += heading("Across tasks") + ranks_part(results, columns)
    return Section("comparison", "Is the difference real?", body)


def ranks_part(results: StudyResults, columns: list[Column]) -> str:
    summary = headline_ranks(results.comparisons, results.tasks, results.splits, results.study.report.metric)
    models = list(summary.mean_ranks.index)
    rows = [[model, *(number(summary.ranks.loc[task, model], 1) for task in summary.ranks.index),
             f"{summary.mean_ranks[model]:.2f}"] for model in models]
    table = Table(["model", *summary.ranks.index, "mean rank"], rows)
    if summary.p_values is None:
        verdict = (f"{len(summary.ranks)} tasks and splits with a result for every model: too few for a test across tasks "
                   "(at least 3); the mean ranks alone.")
    else:
        verdict = (f"Friedman's test over {len(summary.ranks)} tasks and splits: {p_text(summary.friedman_p)}; the diagram joins "
                   "models that Conover's test (Holm) cannot tell apart.")
    figure = results.files(layout.RANKS)
    drawn = png_figure(figure, "Mean ranks across tasks") if figure.is_file() else note(f"{layout.RANKS} is missing.")
    return paragraph("Each model's rank on each task and split by the mean of its headline metric (1 = best).") + table.html() \
        + paragraph(verdict) + drawn


@dataclass(frozen=True)
class PairedComparison:
    """`first` against `second`, split instance by split instance; the test is that pair of the study's comparison of
    every model (so its interval and p value are adjusted for all pairs)."""

    task: str
    split: str
    metric: str
    first: str
    second: str
    instances: tuple[str, ...]
    first_values: tuple[float, ...]
    second_values: tuple[float, ...]
    comparison: MethodComparison

    @property
    def differences(self) -> np.ndarray:
        return np.array(self.first_values) - np.array(self.second_values)

    def pair(self) -> tuple[Pair, int] | None:
        """The study comparison's pair of the two, and 1 or −1 for its orientation against first − second."""
        for pair in self.comparison.pairs:
            if (pair.first, pair.second) == (self.first, self.second):
                return pair, 1
            if (pair.first, pair.second) == (self.second, self.first):
                return pair, -1
        return None

    def verdict(self) -> str:
        n = len(self.instances)
        label = metric_label(self.metric)
        mean = float(self.differences.mean())
        text = (f"{self.first} − {self.second} ({label}): mean {mean:+.3f}"
                + (f", sd {self.differences.std(ddof=1):.3f}" if n > 1 else "")
                + f" over {n} split instance{'s' if n != 1 else ''}.")
        found = self.pair()
        if self.comparison.test == NO_TEST or found is None:
            return text + f" {self.comparison.reason}: no test can be made."
        pair, sign = found
        low, high = sorted((sign * pair.lower, sign * pair.upper))
        level = f"{1 - self.comparison.alpha:.0%}"
        interval = "" if math.isnan(pair.lower) else f" simultaneous {level} interval [{low:+.3f}, {high:+.3f}],"
        text += f" {self.comparison.test} over all {len(self.comparison.methods)} models:{interval} adjusted {p_text(pair.p_adjusted)}"
        if not pair.significant:
            return text + ": no significant difference."
        better = self.first if self.comparison.is_better(sign * pair.mean_difference) else self.second
        if pair.matters:
            return text + f": {better} does better, by more than the practical threshold."
        return text + f": {better} does better, but by less than the practical threshold {self.comparison.min_difference:g}."

    def table(self) -> Table:
        rows = [
            [str(instance), f"{first:.3f}", f"{second:.3f}", f"{first - second:+.3f}"]
            for instance, first, second in zip(self.instances, self.first_values, self.second_values)
        ]
        return Table(["split instance", self.first, self.second, f"{self.first} − {self.second}"], rows)


def paired_comparisons(results: StudyResults, settings: ReportSettings) -> list[PairedComparison]:
    """One comparison per overview column, when both checkpoints of `report.paired` are in the study."""
    if settings.paired is None or not set(settings.paired) <= set(results.transformers):
        return []
    first, second = settings.paired
    comparisons = []
    for column in overview_columns(results, settings):
        comparison = column_comparison(results, column)
        first_values = results.instance_values(column.task, first, column.split, column.metric)
        second_values = results.instance_values(column.task, second, column.split, column.metric)
        instances = tuple(sorted(set(first_values) & set(second_values), key=instance_order))
        if instances and comparison is not None:
            comparisons.append(PairedComparison(
                column.task, column.split, column.metric, first, second, instances,
                tuple(first_values[instance] for instance in instances), tuple(second_values[instance] for instance in instances),
                comparison,
            ))
    return comparisons


def paired_section(results: StudyResults, settings: ReportSettings) -> Section | None:
    """None (no section) unless both checkpoints of `report.paired` ran here."""
    comparisons = paired_comparisons(results, settings)
    if not comparisons:
        return None
    first, second = settings.paired
    body = paragraph(f"{first} and {second} fine-tuned on the same split instances; differences per instance, so that what an "
                     "instance shares (split, test molecules) cancels out. The test is this pair's in the comparison of every "
                     "model (the previous section), adjusted for all pairs.")
    for comparison in comparisons:
        body += heading(f"{comparison.task} / {comparison.split}") + comparison.table().html() + paragraph(comparison.verdict())
    return Section("paired", f"Paired comparison: {first} vs {second}", body)


# ---------------------------------------------------------------------------------------------------
# Figures made by the report_figures rule


def figure_section(results: StudyResults, anchor: str, title: str, name: str, caption: Callable[[TaskSpec], str]) -> Section:
    body = ""
    for task, spec in results.tasks.items():
        for split in results.splits:
            path = results.files(layout.report_figure(task, split, name))
            body += png_figure(path, f"{task} / {split}: {caption(spec)}") if path.is_file() else note(f"{task} / {split}: no figure ({path} is missing).")
    return Section(anchor, title, body)


def curves_caption(task: TaskSpec) -> str:
    if task.type is TaskType.REGRESSION:
        return "test-fold predictions against measured values of every model and seed (no ROC for regression)"
    averaged = {
        TaskType.MULTILABEL: ", macro-averaged over labels (the legend's AUROC is the table's mean over labels)",
        TaskType.MULTICLASS: ", classes one-vs-rest, macro-averaged",
    }
    return f"test-fold ROC and precision-recall curves of every model, one faint line per seed{averaged.get(task.type, '')}"


def curves_section(results: StudyResults) -> Section:
    return figure_section(results, "curves", "ROC and precision-recall curves", "test_curves", curves_caption)


def learning_section(results: StudyResults) -> Section:
    return figure_section(
        results, "learning", "Learning curves", "learning_curves",
        lambda task: "training and validation loss and validation metric per epoch of every fine-tuned model and seed",
    )


# ---------------------------------------------------------------------------------------------------
# Embeddings: projections and how well they separate the classes


def change(separation: dict[str, Any], key: str) -> str:
    """'zero-shot → fine-tuned' value of one separation measure."""
    before, after = (separation.get(stage, {}).get(key) for stage in ("zeroshot", "finetuned"))
    if isinstance(before, str) and before == after:
        return before
    return f"{number(before)} → {number(after)}"


def explained_variance(separation: dict[str, Any]) -> str:
    variance = separation.get("pca_explained_variance") or {}
    totals = [f"{sum(values):.1%}" if values else MISSING for values in (variance.get("zeroshot"), variance.get("finetuned"))]
    return " → ".join(totals)


def separation_table(separations: dict[str, dict[str, Any]]) -> Table:
    keys = list(dict.fromkeys(key for separation in separations.values() for stage in ("zeroshot", "finetuned")
                              for key in (separation.get(stage) or {})))
    rows = [[str(instance), *(change(separation, key) for key in keys), explained_variance(separation)]
            for instance, separation in separations.items()]
    return Table(["split instance", *keys, "PCA variance PC1+PC2"], rows)


def embeddings_section(results: StudyResults) -> Section:
    """Per task, split and model (each checkpoint, and chemprop's learned vector where it runs): the separation numbers
    of every embedded split instance and the projections of the first."""
    study = results.study
    body = ""
    for task in results.tasks:
        for split in results.splits:
            for model in study.embedded_models:
                separations = {
                    instance.name: read_json_file(path)
                    for instance in study.embedded_instances(split)
                    if (path := results.files(layout.separation(task, model, split, instance))).is_file()
                }
                body += heading(f"{task} / {split} / {model}")
                body += paragraph("Class separation of the test-fold embeddings, zero-shot (pre-trained; chemprop: at "
                                  "initialisation) → fine-tuned (trained); "
                                  "null (—) where undefined.")
                body += separation_table(separations).html() if separations else note("No separation files.")
                first = study.instances(split)[0]
                for method in study.projections:
                    image = results.files(layout.projection("png", task, model, split, first, method))
                    body += png_figure(image, f"{task} / {split} / {model}, {first.name}: {method}") if image.is_file() else note(f"{image} is missing.")
    return Section("embeddings", "Embeddings", body)


# ---------------------------------------------------------------------------------------------------
# Pre-training


def pretraining_section(results: StudyResults) -> Section | None:
    """The pre-trained models' held-out scores per epoch; None (no section) when the study pre-trains nothing."""
    study = results.study
    if not study.pretrained:
        return None
    rows, epochs = [], []
    for name, spec in study.pretrained.items():
        run_path = results.files(layout.pretrain_file("run.json", spec.objective, spec.size, name))
        history_path = results.files(layout.pretrain_file("history.csv", spec.objective, spec.size, name))
        if not (run_path.is_file() and history_path.is_file()):
            rows.append([name, spec.objective, spec.size, *([MISSING] * 6)])
            continue
        run = read_json_file(run_path)
        metric = f"holdout_{'masked_accuracy' if spec.objective == 'mlm' else 'r2'}"
        corpus = run.get("corpus", {})
        rows.append([
            name, spec.objective, spec.size, number(run.get("parameters"), 0),
            f"{corpus.get('train', MISSING)} / {corpus.get('holdout', MISSING)}",
            f"{run.get('epochs_run', MISSING)} (kept {run.get('epoch_kept', MISSING)})",
            f"{metric.removeprefix('holdout_')} {number(run.get(metric))}", number(run.get("holdout_loss")), number(run.get("seconds"), 1),
        ])
        history = read_csv(history_path)
        epochs.append(heading(f"{name} ({spec.objective}-{spec.size})", 4)
                      + Table(list(history.columns), [[number(value) for value in row] for row in history.itertuples(index=False)]).html())
    table = Table(["model", "objective", "size", "parameters", "train / holdout molecules", "epochs",
                   "held-out score", "held-out loss", "seconds"], rows)
    body = (paragraph("Models pre-trained here on one corpus (every task molecule removed), scored on its held-out part "
                      "after each epoch: masked-token accuracy for MLM, mean R² over the descriptors for MTR.")
            + table.html() + details("Held-out scores per epoch", "".join(epochs)))
    return Section("pretraining", "Pre-training", body)


# ---------------------------------------------------------------------------------------------------
# Data quality and splits


def describe_balance(balance: dict[str, Any]) -> str:
    """One fold's (or the whole table's) label balance as a short text."""
    if "positives" in balance:
        positives, total = balance["positives"], balance["positives"] + balance["negatives"]
        text = f"{positives}/{total} positive ({positives / total:.1%})" if total else "no labels"
    elif "classes" in balance:
        text = ", ".join(f"{name} {count}" for name, count in balance["classes"].items()) or "no labels"
    else:
        text = f"n {balance['n']}, mean {number(balance['mean'])}, sd {number(balance['sd'])}"
    return text + (f", {balance['missing']} missing" if balance.get("missing") else "")


def example_rows(path: Path, what: str) -> str:
    if not path.is_file():
        return note(f"{path} is missing.")
    table = read_csv(path, dtype=str, keep_default_na=False) if path.stat().st_size else pd.DataFrame()
    if table.empty:
        return paragraph(f"{what}: none.")
    shown = table.head(EXAMPLE_ROWS)
    body = Table(list(shown.columns), shown.astype(str).values.tolist()).html()
    return details(f"{what}: {len(table)}" + (f" (first {EXAMPLE_ROWS} shown)" if len(table) > EXAMPLE_ROWS else ""), body)


def qc_section(results: StudyResults) -> Section:
    counts: dict[str, dict[str, Any]] = {}
    body_parts = []
    for task, spec in results.tasks.items():
        qc_path = results.files(layout.data_file("qc.json", task))
        if not qc_path.is_file():
            body_parts.append(note(f"{task}: no QC ({qc_path} is missing)."))
            continue
        counts[task] = {key: value for key, value in read_json_file(qc_path).items() if key != "invalid_examples"}
        molecules_path = results.files(layout.data_file("molecules.csv", task))
        balance_rows = []
        if molecules_path.is_file():
            molecules = read_csv(molecules_path, dtype={"mol_id": str, "smiles": str})
            balance_rows = [[label, describe_balance(BALANCE[spec.type](molecules[label]))] for label in spec.label_columns]
        task_body = heading(f"{task} ({spec.type.value})", 4)
        task_body += Table(["label", "molecules after QC"], balance_rows).html() if balance_rows else note(f"{molecules_path} is missing.")
        task_body += example_rows(results.files(layout.data_file("invalid.csv", task)), "Rows dropped (invalid SMILES, empty, missing or conflicting labels)")
        task_body += example_rows(results.files(layout.data_file("duplicates.csv", task)), "Duplicate groups (rows with the same canonical SMILES, merged)")
        body_parts.append(task_body)
    keys = list(dict.fromkeys(key for task_counts in counts.values() for key in task_counts))
    table = Table(["task", *keys], [[task, *(number(task_counts.get(key)) for key in keys)] for task, task_counts in counts.items()])
    body = (table.html() if counts else "") + heading("Label balance, dropped rows and duplicates") + "".join(body_parts)
    return Section("qc", "Data quality", body)


def predefined_text(task: str, path: Path, found: dict[str, Any]) -> str:
    """What matching a task's published folds found (chemlm.predefined): per fold file, rows matched and left out."""
    files = "; ".join(f"{source['fold']}: {source['path']}, {source['rows']} rows, {source['matched']} matched, "
                      f"{source['invalid']} invalid, {source['not_in_task']} not among the task's molecules" for source in found["sources"])
    return (f"{task} / predefined, the published folds ({files}). The rows left out are listed in {path} "
            "(under 'predefined'); a molecule the task's table holds twice with two labels is dropped by featurization "
            "and so is among those not in the task.")


def split_section(results: StudyResults) -> Section:
    size_rows, balance_rows, notes = [], [], []
    for task in results.tasks:
        for split in results.splits:
            for instance in results.study.instances(split):
                path = results.files(layout.split_file("json", task, split, instance))
                if not path.is_file():
                    continue
                summary = read_json_file(path)
                sizes, scaffolds, clusters = summary["sizes"], summary.get("scaffolds", {}), summary.get("clusters", {})
                size_rows.append([
                    task, split, instance.name,
                    *(f"{sizes[fold]} ({summary['fractions'][fold]:.1%})" for fold in ("train", "valid", "test")),
                    " / ".join(str(scaffolds[fold]) for fold in ("train", "valid", "test")) if scaffolds else MISSING,
                    number(summary.get("scaffolds_in_several_folds")),
                    " / ".join(str(clusters[fold]) for fold in ("train", "valid", "test")) if clusters else MISSING,
                ])
                if "predefined" in summary and instance == results.study.instances(split)[0]:
                    notes.append(predefined_text(task, path, summary["predefined"]))
                for label, folds in summary["labels"].items():
                    balance_rows.append([task, split, instance.name, label, *(describe_balance(folds[fold]) for fold in ("train", "valid", "test"))])
    if not size_rows:
        return Section("splits", "Splits", note("No split summaries (results/<task>/splits/<split>/<instance>.json)."))
    sizes = Table(["task", "split", "split instance", "train", "valid", "test", "scaffolds train / valid / test",
                   "scaffolds in several folds", "Butina clusters train / valid / test"], size_rows)
    balance = Table(["task", "split", "split instance", "label", "train", "valid", "test"], balance_rows)
    body = sizes.html() + "".join(paragraph(text) for text in notes)
    return Section("splits", "Splits", body + heading("Label balance per fold") + balance.html())


# ---------------------------------------------------------------------------------------------------
# Calibration, uncertainty, predictions


def spread_text(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return MISSING
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def calibration_section(results: StudyResults) -> Section | None:
    """Brier score and expected calibration error of the test fold before and after calibration; None when no task
    is binary or multi-label."""
    study = results.study
    calibrated = [task for task, spec in study.tasks.items() if spec.type.value in layout.CALIBRATED_TYPES]
    if not calibrated:
        return None
    body = paragraph(f"Probabilities calibrated by {study.calibration} scaling fitted on each seed's validation fold, never on "
                     "the test fold; the numbers are the test fold's, mean ± sd over seeds (labels averaged, as AUROC is). "
                     "Lower is better for both. ECE: expected calibration error over 10 probability bins.")
    for task in calibrated:
        for split in study.splits:
            table_path = results.files(layout.report_figure(task, split, "calibration", "csv"))
            figure_path = results.files(layout.report_figure(task, split, "calibration"))
            if not table_path.is_file():
                body += note(f"{task} / {split}: {table_path} is missing.")
                continue
            table = read_csv(table_path)
            rows = []
            for model, group in table.groupby("model", sort=False):
                rows.append([model, f"{spread_text(group['brier_before'])} → {spread_text(group['brier_after'])}",
                             f"{spread_text(group['ece_before'])} → {spread_text(group['ece_after'])}"])
            body += heading(f"{task} / {split}") + Table(["model", "Brier score before → after", "ECE before → after"], rows).html()
            if figure_path.is_file():
                body += png_figure(figure_path, f"{task} / {split}: reliability of the test fold's probabilities, before (dotted) and after (solid) calibration")
    return Section("calibration", "Calibration", body)


def uncertainty_statements(table: pd.DataFrame, coverage: float = 0.5) -> list[str]:
    """Per model, whether keeping the most confident or most in-domain half beats keeping a random half."""
    statements = []
    for model, group in table.groupby("model", sort=False):
        at = group[group["coverage"] == coverage].set_index("ordering")["error"]
        metric = group["metric"].iloc[0]
        if "random" not in at:
            continue
        for ordering, what in (("ensemble sd", "lowest sd over the seeds' models"), ("similarity", "highest similarity to the training fold")):
            if ordering not in at:
                statements.append(f"{model}: ranking by the ensemble's sd is not possible here (one seed, or seeds whose models agree everywhere).")
                continue
            change = at[ordering] / at["random"] - 1 if at["random"] else math.nan
            verdict = (f"lowers the {metric} by {-change:.0%}" if change <= -0.05 else
                       f"does not help (a change of {change:+.0%})")
            statements.append(f"{model}: keeping the {coverage:.0%} of test molecules with the {what}: {metric} "
                              f"{at[ordering]:.3f} against {at['random']:.3f} for a random {coverage:.0%}; it {verdict}.")
    return statements


def uncertainty_section(results: StudyResults) -> Section:
    study = results.study
    body = paragraph("Is a prediction's uncertainty useful? The test-fold error of each model's ensemble over seeds when only "
                     "part of the test molecules is kept: those with the lowest sd over the seeds' models, those most similar "
                     "(ECFP4 Tanimoto) to the training fold, or a random part (the mean of 50 random orders). The error "
                     "of binary and multi-label tasks is the Brier score of the calibrated probabilities, which the "
                     "predictions hand to users; an sd below the scores' resolution is 0, so seeds that make one and the "
                     "same model give no sd ordering.")
    for task in study.tasks:
        for split in study.splits:
            table_path = results.files(layout.report_figure(task, split, "uncertainty", "csv"))
            if not table_path.is_file():
                body += note(f"{task} / {split}: {table_path} is missing.")
                continue
            table = read_csv(table_path)
            body += heading(f"{task} / {split}")
            if table.empty:
                body += note("No molecule is in every seed's test fold (a random split, or a cross-validation of one repeat): no "
                             "ensemble to judge.")
                continue
            wide = table.pivot_table(index=["model", "ordering"], columns="coverage", values="error", sort=False)
            coverages = sorted(wide.columns, reverse=True)
            rows = [[model, ordering, *(number(wide.loc[(model, ordering), coverage]) for coverage in coverages)] for model, ordering in wide.index]
            body += Table(["model", "kept by", *(f"{coverage:.0%} kept" for coverage in coverages)], rows).html()
            body += bullet_list(uncertainty_statements(table))
            figure_path = results.files(layout.report_figure(task, split, "uncertainty"))
            if figure_path.is_file():
                body += png_figure(figure_path, f"{task} / {split}: {table['metric'].iloc[0]} of the kept test predictions")
    return Section("uncertainty", "Uncertainty", body)


def predictions_section(results: StudyResults) -> Section | None:
    """The libraries scored, their counts, and the top-ranked molecules of each model; None without `predict`."""
    study = results.study
    predict = study.predict
    if predict is None:
        return None
    body = paragraph(f"Libraries scored by every seed's model of each checkpoint and baseline: the ensemble's mean, its sd over "
                     f"the seeds, the calibrated probability ({study.calibration}), and the highest ECFP4 Tanimoto similarity "
                     f"to the training fold with that neighbour. The top {predict.top} of each model, drawn; every row, in "
                     f"input order, is in results/<task>/predictions/<library>/<split>/<model>.csv.gz.")
    for library in predict.libraries:
        counts = read_json_file(results.files(layout.library_qc(library)))
        body += heading(f"Library {library}") + paragraph(
            f"{counts['rows']} rows: {counts['valid']} read by RDKit, {counts['invalid']} not (kept, with empty scores and the reason).")
        for task in predict.tasks:
            for split in predict.splits:
                for model in predict.models:
                    top = top_predictions(results.files(layout.library_predictions(task, library, split, model)), predict.top)
                    body += heading(f"{task} / {split} / {model}", 4)
                    figure = results.files(layout.prediction_figure(task, split, library, model))
                    if figure.is_file():
                        body += png_figure(figure, f"{library}: the top {len(top)} by {model} ({task}, {split})")
                    ties = ranking_ties(top)
                    if ties:
                        body += note(f"{model}: {ties}.")
                    if not top.empty:
                        shown = [column for column in top.columns if column.split(":")[0] in ("mean", "sd", "calibrated")]
                        columns = ["id", "smiles", *shown, "max_similarity", "neighbour_id"]
                        rows = [[str(row[column]) if column in ("id", "smiles", "neighbour_id") else number(row[column]) for column in columns]
                                for _, row in top.iterrows()]
                        body += details(f"The top {len(top)} as a table", Table(columns, rows).html())
    return Section("predictions", "Predictions", body)


def search_section(results: StudyResults) -> Section | None:
    """Each checkpoint's search trials and chosen settings, and the baselines' chosen settings; None without a search."""
    study = results.study
    if study.search is None:
        return None
    body = paragraph(f"Before the seeds were fine-tuned, search trials per task, checkpoint and split (settings drawn "
                     f"from a Sobol sequence seeded {study.search.seed}) were each fine-tuned with seed(s) "
                     f"{', '.join(map(str, study.search.seeds))} and scored on the validation fold. Selection used the "
                     "validation fold alone: no test label was read until the chosen settings had been fine-tuned.")
    for task in study.tasks:
        for split in study.splits:
            body += heading(f"{task} / {split}")
            chosen_rows = []
            for checkpoint in layout.searched_checkpoints(study, task):
                best = read_json_file(results.files(layout.search_file("best.json", task, checkpoint, split)))
                names = searched_settings(best)
                chosen_rows.append([checkpoint, str(best["trial"]), number(best["valid_metric"]),
                                    ", ".join(f"{name} {best['params'][name]}" for name in names)])
                rows = [[str(trial["trial"]), *(str(trial["params"][name]) for name in names), number(trial["valid_metric"]), number(trial["seconds"], 1)]
                        for trial in best["trials"]]
                body += details(f"{checkpoint}: {len(rows)} trials", Table(["trial", *names, "validation metric", "seconds"], rows).html())
            for baseline in (name for name in study.baselines if study.baseline_search(name)):
                for instance in study.instances(split):
                    settings = read_json_file(results.files(layout.baseline_file("settings.json", task, baseline, split, instance)))
                    if settings["searched"]:
                        chosen = next(trial for trial in settings["trials"] if trial["trial"] == settings["trial"])
                        chosen_rows.append([f"{baseline} ({instance.name})", str(settings["trial"]), number(chosen["valid_metric"]),
                                            ", ".join(f"{name} {value}" for name, value in settings["settings"].items())])
            body += Table(["model", "chosen trial", "validation metric", "chosen settings"], chosen_rows).html()
            figure = results.files(layout.report_figure(task, split, "search")) if layout.searched_checkpoints(study, task) else None
            if figure is not None and figure.is_file():
                body += png_figure(figure, f"{task} / {split}: validation metric of each trial against each searched setting")
    return Section("search", "Hyper-parameter search", body)
