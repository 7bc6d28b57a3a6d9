"""A task's molecules with their fold of one split instance: what fine-tuning, embeddings and baselines read.

No torch and no rdkit, so every environment can use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class SplitInstance:
    """One split instance of a split method: a seed of a single split (`seed0`), or one fold of a repeat of a repeated
    cross-validation (`repeat0-fold0`), whose test fold is that fold. `seed` seeds the model trained on it (and a
    single split's assignment); a cross-validation's repeat seeds its shuffle."""

    name: str
    seed: int
    folds: int | None = None  # cross-validation: the number of folds of each repeat
    repeat: int | None = None
    fold: int | None = None

    @classmethod
    def of_seed(cls, seed: int) -> SplitInstance:
        return cls(f"seed{seed}", seed)

    @classmethod
    def of_fold(cls, folds: int, repeat: int, fold: int) -> SplitInstance:
        """The model seed is the repeat's: the folds of one repeat share it, each repeat has its own."""
        return cls(f"repeat{repeat}-fold{fold}", repeat, folds, repeat, fold)

    @property
    def is_fold(self) -> bool:
        return self.fold is not None

    def to_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}
