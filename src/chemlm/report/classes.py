"""The report's per-class view of multi-class tasks: each class against the rest (accuracy, F1, AUROC, as the field
reports them), published per-class results as reference rows, how many test molecules each class has, and each
model's confusion matrix summed over the split instances."""

from __future__ import annotations

from typing import Any

import numpy as np

from chemlm import layout
from chemlm.report.results import StudyResults, read_json_file
from chemlm.report.sections import Section
from chemlm.report.tables import MISSING, Table, heading, note, paragraph
from chemlm.tasks import TaskType

CLASS_METRICS = {"accuracy": "accuracy", "f1": "F1", "auroc": "AUROC"}
# A class with fewer test molecules than this in a split instance is named: its F1 and AUROC rest on a handful.
FEW_MOLECULES = 10
UNDEFINED = "undefined"


def confusions(results: StudyResults, task: str, model: str, split: str) -> list[dict[str, Any]]:
    """The confusion part of each split instance's metrics file that exists."""
    found = []
    for instance in results.study.instances(split):
        path = results.files(layout.metrics(task, model, split, instance))
        if path.is_file():
            found.append(read_json_file(path)["confusion"])
    return found


def class_table(results: StudyResults, task: str, split: str, classes: list[str], metric: str) -> Table:
    """Mean ± sd over split instances of one per-class metric, a row per model, then the published references."""
    rows, row_classes = [], []
    for model in results.models(task, split):
        cells = []
        for name in classes:
            stat = results.stat(task, model, split, f"{metric}[{name}]")
            cells.append(stat.text() if stat else UNDEFINED)
        rows.append([model, *cells])
        row_classes.append("baseline" if results.is_baseline(model) else "")
    for reference in results.study.report.published_by_class:
        if (reference.task, reference.split) == (task, split):
            values = [reference.values.get(name, {}).get(metric) for name in classes]
            rows.append([f"{reference.model} (published: {reference.source})", *(f"{value:.3f}" if value is not None else MISSING for value in values)])
            row_classes.append("reference")
    return Table(["model", *classes], rows, frozenset(), row_classes)


def support_text(supports: list[dict[str, int]], classes: list[str]) -> tuple[str, list[str]]:
    """Test molecules per class over the split instances, and the classes that have few."""
    parts, few = [], []
    for name in classes:
        counts = [support.get(name, 0) for support in supports]
        low, high = min(counts), max(counts)
        parts.append(f"{name} {low}" if low == high else f"{name} {low}-{high}")
        if low < FEW_MOLECULES:
            few.append(f"{name} ({low} in a split instance)")
    return ", ".join(parts), few


def confusion_table(found: list[dict[str, Any]], classes: list[str]) -> Table:
    """Molecules of each true class (rows) predicted as each class (columns), summed over the split instances."""
    total = np.zeros((len(classes), len(classes)), dtype=int)
    for confusion in found:
        order = [confusion["classes"].index(name) for name in classes]
        total += np.asarray(confusion["matrix"], dtype=int)[np.ix_(order, order)]
    return Table(["true \\ predicted", *classes], [[name, *(str(count) for count in row)] for name, row in zip(classes, total)])


def classes_section(results: StudyResults) -> Section | None:
    """Per multi-class task and split: one table per per-class metric, the classes' test sizes, and confusion matrices."""
    tasks = [task for task, spec in results.tasks.items() if spec.type is TaskType.MULTICLASS]
    if not tasks:
        return None
    body = paragraph("Each class against the rest on the test fold, mean ± sd over split instances (n = instances); "
                     f"{UNDEFINED} where a class has no test molecule in any instance (AUROC) or is neither true nor "
                     "predicted (F1). Published per-class results are reference rows where the config names them.")
    for task in tasks:
        for split in results.splits:
            models = results.models(task, split)
            found = {model: confusions(results, task, model, split) for model in models}
            first = next((confusion for model in models for confusion in found[model]), None)
            if first is None:
                body += heading(f"{task} / {split}") + note("No metrics files.")
                continue
            classes = list(first["classes"])
            sizes, few = support_text([confusion["support"] for confusion in found[models[0]] or [first]], classes)
            body += heading(f"{task} / {split}")
            body += paragraph(f"Test molecules per class: {sizes}.")
            if few:
                body += note(f"Classes with fewer than {FEW_MOLECULES} test molecules: {', '.join(few)}; their F1 and AUROC "
                             "rest on these few molecules and vary much between models and instances.")
            for metric, label in CLASS_METRICS.items():
                body += heading(f"{label}, each class against the rest", 4) + class_table(results, task, split, classes, metric).html()
            body += heading("Confusion matrices, summed over split instances", 4)
            for model in models:
                if found[model]:
                    body += paragraph(f"{model} ({len(found[model])} split instances)") + confusion_table(found[model], classes).html()
    return Section("classes", "Per class", body)
