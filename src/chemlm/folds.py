"""A task's molecules with their fold of one split: what fine-tuning, embeddings and baselines read.

No torch and no rdkit, so every environment can use it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chemlm.io import InputError, read_csv

FOLDS = ("train", "valid", "test")


def load_fold_tables(molecules_csv: Path, split_csv: Path) -> pd.DataFrame:
    """molecules.csv with a `fold` column from the split file, which must list the same molecules in the same order."""
    molecules = read_csv(molecules_csv, dtype={"mol_id": str})
    assignment = read_csv(split_csv, dtype={"mol_id": str})
    if len(assignment) != len(molecules) or not (assignment["mol_id"].to_numpy() == molecules["mol_id"].to_numpy()).all():
        raise InputError(f"{split_csv}: its mol_ids do not match {molecules_csv}; rerun the split")
    molecules["fold"] = assignment["fold"].to_numpy()
    for fold in FOLDS:
        if not (molecules["fold"] == fold).any():
            raise InputError(f"{split_csv}: the {fold} fold is empty")
    return molecules
