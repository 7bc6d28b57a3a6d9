"""What every kind of model's atom attributions share: the two tables any drawing or report reads, `atoms.csv` (model,
id, atom, weight) and `molecules.csv` (model, id, SMILES, the output explained, its completeness and the share of
non-atom tokens), which output a target names and how it is called. No RDKit, no torch."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from chemlm.io import InputError
from chemlm.explain.smiles_map import NON_ATOM_KINDS

ATOM_COLUMNS = ["model", "id", "atom", "weight"]
MOLECULE_COLUMNS = ["model", "id", "smiles", "explained", "output", "baseline_output", "completeness_gap", "complete", "steps",
                    *(f"share:{kind}" for kind in NON_ATOM_KINDS)]


def explained_name(task_type: str, target: str | None, labels: Sequence[str]) -> str:
    """What a network's attribution explains (a transformer's or chemprop's output before its last activation), in words."""
    if task_type == "multiclass":
        return f"logit of class {target}"
    if task_type == "regression":
        return f"scaled {target or labels[0]}"
    return f"log-odds of {target or labels[0]}=1"


def output_position(names: Sequence[str], target: str | None, model: str) -> int:
    """Which of a model's outputs (its classes or labels, `names`) a target names; a model of one output needs none."""
    if target is None:
        if len(names) > 1:
            raise InputError(f"{model}: name the class or label to explain (one of: {', '.join(names)})")
        return 0
    if target not in names:
        raise InputError(f"{model}: no class or label '{target}' (it has: {', '.join(names)})")
    return list(names).index(target)


def targets_of(molecules: pd.DataFrame, target: str | None) -> list[str | None]:
    """The class or label explained for each molecule: its `target` column where it has one, else `target`."""
    return molecules["target"].tolist() if "target" in molecules.columns else [target] * len(molecules)
