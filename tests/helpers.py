"""Builders shared by the tests: tiny models and tables with known contents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "resources" / "chemberta2-architecture"
DEMO_HIV = REPO / "resources" / "demo" / "hiv_sample.csv.gz"
TINY_ARCHITECTURE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}


def tiny_scratch_entry() -> dict:
    return {"source": "scratch", "architecture": str(ARCHITECTURE), "architecture_overrides": dict(TINY_ARCHITECTURE)}


def demo_molecules(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """`n` valid molecules of the demo HIV sample in molecules.csv layout (scaffold column not used by training),
    with the binary label, the three-class activity, two multi-label columns with gaps, and a regression target."""
    table = pd.read_csv(DEMO_HIV)
    positives = table[table["HIV_active"] == 1].head(n // 4)
    rest = table[table["HIV_active"] == 0].head(n - len(positives))
    table = pd.concat([positives, rest]).sort_index().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    length = table["smiles"].str.len().to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "mol_id": [f"m{i}" for i in range(len(table))],
            "smiles": table["smiles"],
            "scaffold": "",
            "HIV_active": table["HIV_active"].astype(float),
            "activity": table["activity"],
            "long": (length > np.median(length)).astype(float),
            "ring_rich": np.where(rng.random(len(table)) < 0.2, np.nan, (table["smiles"].str.count("1") > 2).astype(float)),
            "length": length / 10.0 + rng.normal(0, 0.1, len(table)),
        }
    )


def write_fold_files(molecules: pd.DataFrame, directory: Path) -> tuple[Path, Path]:
    """molecules.csv and a split file: every 5th molecule valid, every 5th+1 test, the rest train."""
    molecules_csv, split_csv = directory / "molecules.csv", directory / "split.csv"
    molecules.to_csv(molecules_csv, index=False)
    position = np.arange(len(molecules)) % 5
    folds = np.where(position == 0, "valid", np.where(position == 1, "test", "train"))
    pd.DataFrame({"mol_id": molecules["mol_id"], "fold": folds}).to_csv(split_csv, index=False)
    return molecules_csv, split_csv
