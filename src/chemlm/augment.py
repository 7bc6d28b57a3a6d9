"""SMILES enumeration: each molecule as several SMILES strings, its canonical SMILES first and then random ones.

A model that reads one fixed string per molecule can learn that string's spelling; random SMILES (RDKit's random
atom order) show it the same molecule spelled many ways. RDKit runs here, in the chemistry environment, in isolated
workers; fine-tuning reads the file and imports no RDKit. The draws are seeded, so a rerun writes the same file, and
which draws make a molecule's variants is chemlm.variants' to say, so that scoring new molecules makes the same ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd
from rdkit import Chem, rdBase

from chemlm.io import read_csv, write_csv
from chemlm.isolation import Crash, Isolation, map_isolated
from chemlm.variants import SEED, distinct_variants

logger = logging.getLogger(__name__)


def random_smiles_chunk(smiles: Sequence[str], draws: int, isomeric: bool, seed: int = SEED) -> list[list[str]]:
    """`draws` seeded random SMILES of each SMILES's molecule, in the order drawn, repeats included; none for a SMILES
    RDKit cannot read back (its variants are then the SMILES alone)."""
    drawn = []
    with rdBase.BlockLogs():
        for text in smiles:
            molecule = Chem.MolFromSmiles(text) if draws > 0 else None
            drawn.append([] if molecule is None else list(Chem.MolToRandomSmilesVect(molecule, draws, randomSeed=seed, isomericSmiles=isomeric)))
    return drawn


def write_variants(molecules_csv: str | Path, count: int, isomeric: bool, out_csv: str | Path, isolation: Isolation = Isolation()) -> pd.DataFrame:
    """`mol_id`, `variant` (0 = the canonical SMILES of molecules.csv), `smiles`: up to `count` per molecule."""
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, "smiles": str})
    count = max(1, count)
    results = map_isolated(partial(random_smiles_chunk, draws=count - 1, isomeric=isomeric), molecules["smiles"].tolist(), isolation)
    rows = []
    for mol_id, smiles, result in zip(molecules["mol_id"], molecules["smiles"], results):
        spellings = [smiles] if isinstance(result, Crash) else distinct_variants(smiles, result, count)
        rows += [(mol_id, variant, spelling) for variant, spelling in enumerate(spellings)]
    table = pd.DataFrame(rows, columns=["mol_id", "variant", "smiles"])
    write_csv(table, out_csv)
    logger.info("%d molecules, %.2f SMILES each on average (at most %d)", len(molecules), len(table) / max(len(molecules), 1), count)
    return table
