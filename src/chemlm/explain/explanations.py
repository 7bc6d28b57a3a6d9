"""Atom attributions of fine-tuned transformers for a set of molecules, as two tables that any drawing or report reads:
`atoms.csv` (model, id, atom, weight) and `molecules.csv` (model, id, SMILES, the output explained, its completeness
and the share of non-atom tokens). No RDKit: the SMILES are mapped lexically (chemlm.explain.smiles_map)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from chemlm.explain.smiles_map import NON_ATOM_KINDS, atom_attribution

ATOM_COLUMNS = ["model", "id", "atom", "weight"]
MOLECULE_COLUMNS = ["model", "id", "smiles", "explained", "output", "baseline_output", "completeness_gap", "complete", "steps",
                    *(f"share:{kind}" for kind in NON_ATOM_KINDS)]


def explained_name(task_type: str, target: str | None, labels: Sequence[str]) -> str:
    """What a transformer's attribution explains, in words."""
    if task_type == "binary":
        return f"log-odds of {labels[0]}=1"
    return f"logit of {'class' if task_type == 'multiclass' else 'label'} {target or labels[0]}"


def targets_of(molecules: pd.DataFrame, target: str | None) -> list[str | None]:
    """The class or label explained for each molecule: its `target` column where it has one, else `target`."""
    return molecules["target"].tolist() if "target" in molecules.columns else [target] * len(molecules)


def explain_transformers(models: Mapping[str, str | Path], molecules: pd.DataFrame, target: str | None = None, steps: int = 50,
                         baseline: str = "pad") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(atoms, molecules) tables of integrated gradients of each named model folder for `molecules` (`id`, `smiles`: the
    SMILES as the models read them, canonical as in training; optionally `target`, the class or label of each)."""
    from chemlm.explain.gradients import integrated_gradients
    from chemlm.predict import FineTunedModel

    atom_rows, molecule_rows = [], []
    for name, folder in models.items():
        model = FineTunedModel.load(folder)
        encoding = model.encoding
        for mol_id, smiles, wanted in zip(molecules["id"], molecules["smiles"], targets_of(molecules, target)):
            attribution = integrated_gradients(model, [smiles], wanted, steps, baseline)[0]
            atoms = atom_attribution(attribution.smiles, attribution.tokens, attribution.values)
            atom_rows += [[name, mol_id, atom, float(weight)] for atom, weight in enumerate(atoms.weights)]
            molecule_rows.append([name, mol_id, smiles, explained_name(encoding.task_type.value, wanted, encoding.labels),
                                  attribution.output, attribution.baseline_output, attribution.delta, attribution.complete,
                                  attribution.steps, *(atoms.non_atom_share[kind] for kind in NON_ATOM_KINDS)])
    return pd.DataFrame(atom_rows, columns=ATOM_COLUMNS), pd.DataFrame(molecule_rows, columns=MOLECULE_COLUMNS)
