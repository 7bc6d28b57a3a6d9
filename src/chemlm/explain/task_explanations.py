"""The workflow's explanation step for one task and split: the test molecules worth a look (chemlm.explain.selection)
explained by every model of the first split instance (fine-tuned transformers and fingerprint baselines), as tables and
one drawing with the molecules as rows and the models as columns."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from chemlm.explain.drawing import draw_grid
from chemlm.explain.explanations import explain_transformers
from chemlm.explain.fingerprints import explain_fingerprint_models
from chemlm.explain.selection import select_molecules
from chemlm.io import write_csv
from chemlm.tasks import TaskSpec

logger = logging.getLogger(__name__)


def write_task_explanations(
    task: TaskSpec, predictions: Mapping[str, str], transformers: Mapping[str, str], baselines: Mapping[str, str],
    mpnns: Mapping[str, str], molecules_csv: str, per_reason: int, steps: int, baseline: str, descriptor_names: tuple[str, ...],
    selected_csv: str, atoms_csv: str, explained_csv: str, drawing_png: str,
) -> None:
    """Select the molecules from every model's `predictions` and explain them with every `transformers` folder, stored
    fingerprint `baselines` file and chemprop folder (`mpnns`), each by model name."""
    selected = select_molecules(predictions, molecules_csv, task, per_reason)
    logger.info("task '%s': %d molecules to explain (%s)", task.name, len(selected), ", ".join(selected["reason"].unique()))
    wanted = selected[["id", "smiles", "target"]].astype({"target": str})
    tables = []
    if transformers:
        tables.append(explain_transformers(transformers, wanted, steps=steps, baseline=baseline))
    if baselines:
        tables.append(explain_fingerprint_models(baselines, wanted, descriptor_names=descriptor_names))
    if mpnns:
        from chemlm.explain.mpnn_gradients import explain_mpnn_models

        tables.append(explain_mpnn_models(mpnns, wanted, steps=steps))
    atoms, explained = (pd.concat([table[part] for table in tables], ignore_index=True) for part in (0, 1))
    incomplete = explained[explained["complete"] == False]  # noqa: E712 (None for the fingerprint models)
    if len(incomplete):
        logger.warning("task '%s': %d attributions miss completeness after the most steps", task.name, len(incomplete))
    draw_grid(selected, atoms, explained, drawing_png)
    write_csv(selected, selected_csv)
    write_csv(atoms, atoms_csv)
    write_csv(explained, explained_csv)
