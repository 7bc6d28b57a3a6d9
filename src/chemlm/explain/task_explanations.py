"""The workflow's explanation steps for one task and split, with every model of the first split instance (fine-tuned
transformers, fingerprint baselines, chemprop): the test molecules worth a look (chemlm.explain.selection) as tables
and one drawing with the molecules as rows and the models as columns; and, for a task whose answer is known
(chemlm.explain.ground_truth), every model's attributions scored against it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.explain.drawing import draw_grid
from chemlm.explain.fingerprints import explain_fingerprint_models
from chemlm.explain.ground_truth import SmartsRule, atom_auroc
from chemlm.explain.selection import library_tops, select_molecules
from chemlm.io import write_csv
from chemlm.tasks import TaskSpec

logger = logging.getLogger(__name__)

RANDOM = "random attributions"  # the row every method is judged against: uniform random atom weights


@dataclass(frozen=True)
class ExplainedModels:
    """The models to explain, each by name: fine-tuned transformer folders, stored fingerprint baselines (model.skops;
    LightGBM reads `descriptor_names`) and chemprop folders."""

    transformers: Mapping[str, str | Path] = field(default_factory=dict)
    baselines: Mapping[str, str | Path] = field(default_factory=dict)
    mpnns: Mapping[str, str | Path] = field(default_factory=dict)
    descriptor_names: tuple[str, ...] = ()

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, str]) -> ExplainedModels:
        """From a rule's named inputs, as rules/common.smk's explained_models names them."""
        from chemlm.descriptors import load_descriptor_names

        def named(prefix: str) -> dict[str, str]:
            return {key.removeprefix(prefix): str(path) for key, path in inputs.items() if key.startswith(prefix)}

        return cls(named("transformer_"), named("baseline_"), {"chemprop": str(inputs["chemprop"])} if "chemprop" in inputs else {},
                   load_descriptor_names(inputs["descriptor_names"]) if "descriptor_names" in inputs else ())

    def explain(self, molecules: pd.DataFrame, target: str | None = None, steps: int = 50, baseline: str = "pad") -> tuple[pd.DataFrame, pd.DataFrame]:
        """(atoms, explanations) of every model for `molecules` (`id`, `smiles`, optionally each one's `target`)."""
        tables = []
        if self.transformers:
            from chemlm.explain.gradients import explain_transformers

            tables.append(explain_transformers(self.transformers, molecules, target, steps, baseline))
        if self.baselines:
            tables.append(explain_fingerprint_models(self.baselines, molecules, target, self.descriptor_names))
        if self.mpnns:
            from chemlm.explain.mpnn_gradients import explain_mpnn_models

            tables.append(explain_mpnn_models(self.mpnns, molecules, target, steps))
        return tuple(pd.concat([table[part] for table in tables], ignore_index=True) for part in (0, 1))


def write_task_explanations(
    task: TaskSpec, predictions: Mapping[str, str], models: ExplainedModels, molecules_csv: str, per_reason: int, steps: int,
    baseline: str, selected_csv: str, atoms_csv: str, explained_csv: str, drawing_png: str,
    library_predictions: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """Select the molecules from every model's `predictions` (and, where the study scores libraries, each model's top
    library molecules) and explain them with every one of `models`."""
    selected = select_molecules(predictions, molecules_csv, task, per_reason)
    if library_predictions:
        selected = pd.concat([selected, library_tops(library_predictions, per_reason)], ignore_index=True)
    logger.info("task '%s': %d molecules to explain (%s)", task.name, len(selected), ", ".join(selected["reason"].unique()))
    atoms, explained = models.explain(selected[["id", "smiles", "target"]].astype({"target": str}), steps=steps, baseline=baseline)
    incomplete = explained[explained["complete"] == False]  # noqa: E712 (None for the fingerprint models)
    if len(incomplete):
        logger.warning("task '%s': %d attributions miss completeness after the most steps", task.name, len(incomplete))
    draw_grid(selected, atoms, explained, drawing_png)
    write_csv(selected, selected_csv)
    write_csv(atoms, atoms_csv)
    write_csv(explained, explained_csv)


CHECK_COLUMNS = ["model", "molecules", "atom_auroc_mean", "atom_auroc_sd"]


def write_attribution_check(
    task: TaskSpec, rule: SmartsRule, molecules_csv: str, split_csv: str, models: ExplainedModels, checked: int, steps: int,
    baseline: str, seed: int, per_molecule_csv: str, summary_csv: str,
) -> None:
    """Attributions against the known answer: up to `checked` positive test molecules of a rule task, each model's atom
    weights scored by their AUROC against the atoms the rule's patterns match, beside seeded random weights."""
    from rdkit import Chem

    from chemlm.folds import load_fold_tables

    table = load_fold_tables(Path(molecules_csv), Path(split_csv))
    positives = table[(table["fold"] == "test") & (table[task.label_columns[0]] == 1)]
    positives = positives.sample(n=min(checked, len(positives)), random_state=seed).sort_index()
    wanted = pd.DataFrame({"id": positives["mol_id"].astype(str), "smiles": positives["smiles"], "target": task.label_columns[0]})
    atoms, _ = models.explain(wanted, steps=steps, baseline=baseline)
    rng = np.random.default_rng(seed)
    rows = []
    for mol_id, smiles in zip(wanted["id"], wanted["smiles"]):
        molecule = Chem.MolFromSmiles(smiles)
        decisive = rule.decisive_atoms(molecule)
        for model in [*dict.fromkeys(atoms["model"]), RANDOM]:
            weights = (rng.random(molecule.GetNumAtoms()) if model == RANDOM
                       else atoms[(atoms["model"] == model) & (atoms["id"] == mol_id)].sort_values("atom")["weight"].to_numpy())
            rows.append([model, mol_id, atom_auroc(weights, decisive)])
    per_molecule = pd.DataFrame(rows, columns=["model", "id", "atom_auroc"])
    summary = per_molecule.dropna().groupby("model", sort=False)["atom_auroc"].agg(["count", "mean", "std"]).reset_index()
    summary.columns = CHECK_COLUMNS
    logger.info("task '%s': mean atom AUROC over %d positive test molecules: %s", task.name, len(wanted),
                ", ".join(f"{row.model} {row.atom_auroc_mean:.3f}" for row in summary.itertuples()))
    write_csv(per_molecule, per_molecule_csv)
    write_csv(summary, summary_csv)
