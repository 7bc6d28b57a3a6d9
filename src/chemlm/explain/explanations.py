"""Atom attributions of fine-tuned transformers for a set of molecules, as two tables that any drawing or report reads:
`atoms.csv` (model, id, atom, weight) and `molecules.csv` (model, id, SMILES, the output explained, its completeness
and the share of non-atom tokens). No RDKit: the SMILES are mapped lexically (chemlm.explain.smiles_map)."""

from __future__ import annotations

from collections.abc import Sequence
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


def explain_transformers(folders: Sequence[str | Path], molecules: pd.DataFrame, target: str | None = None, steps: int = 50,
                         baseline: str = "pad") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(atoms, molecules) tables of integrated gradients of each model folder for `molecules` (`id`, `smiles`: the
    SMILES as the models read them, canonical as in training). A model is named by its folder."""
    from chemlm.explain.gradients import integrated_gradients
    from chemlm.predict import FineTunedModel

    atom_rows, molecule_rows = [], []
    for folder in folders:
        model = FineTunedModel.load(folder)
        encoding = model.encoding
        explained = explained_name(encoding.task_type.value, target, encoding.labels)
        for mol_id, attribution in zip(molecules["id"], integrated_gradients(model, molecules["smiles"].tolist(), target, steps, baseline)):
            atoms = atom_attribution(attribution.smiles, attribution.tokens, attribution.values)
            atom_rows += [[str(folder), mol_id, atom, float(weight)] for atom, weight in enumerate(atoms.weights)]
            molecule_rows.append([str(folder), mol_id, attribution.smiles, explained, attribution.output, attribution.baseline_output,
                                  attribution.delta, attribution.complete, attribution.steps,
                                  *(atoms.non_atom_share[kind] for kind in NON_ATOM_KINDS)])
    return pd.DataFrame(atom_rows, columns=ATOM_COLUMNS), pd.DataFrame(molecule_rows, columns=MOLECULE_COLUMNS)
