"""SMILES enumeration: each molecule as several SMILES strings, its canonical SMILES first and then random ones.

A model that reads one fixed string per molecule can learn that string's spelling; random SMILES (RDKit's random
atom order) show it the same molecule spelled many ways. RDKit runs here, in the chemistry environment, in isolated
isolation; fine-tuning reads the file and imports no RDKit. The draws are seeded, so a rerun writes the same file.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pandas as pd
from rdkit import Chem, rdBase

from chemlm.io import read_csv, write_csv
from chemlm.isolation import Crash, Isolation, map_isolated

logger = logging.getLogger(__name__)

SEED = 20240601


def variants_chunk(smiles: list[str], count: int, isomeric: bool) -> list[list[str]]:
    """Each SMILES and count - 1 random SMILES of the same molecule (fewer when the molecule has fewer spellings)."""
    rows = []
    with rdBase.BlockLogs():
        for text in smiles:
            molecule = Chem.MolFromSmiles(text)
            random = Chem.MolToRandomSmilesVect(molecule, count - 1, randomSeed=SEED, isomericSmiles=isomeric) if count > 1 else []
            rows.append([text, *dict.fromkeys(spelling for spelling in random if spelling != text)])
    return rows


def write_variants(molecules_csv: str | Path, count: int, isomeric: bool, out_csv: str | Path, isolation: Isolation = Isolation()) -> pd.DataFrame:
    """`mol_id`, `variant` (0 = the canonical SMILES of molecules.csv), `smiles`: up to `count` per molecule."""
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, "smiles": str})
    results = map_isolated(partial(variants_chunk, count=max(1, count), isomeric=isomeric), molecules["smiles"].tolist(), isolation)
    rows = []
    for mol_id, smiles, result in zip(molecules["mol_id"], molecules["smiles"], results):
        spellings = [smiles] if isinstance(result, Crash) else result
        rows += [(mol_id, variant, spelling) for variant, spelling in enumerate(spellings)]
    table = pd.DataFrame(rows, columns=["mol_id", "variant", "smiles"])
    write_csv(table, out_csv)
    logger.info("%d molecules, %.2f SMILES each on average (at most %d)", len(molecules), len(table) / max(len(molecules), 1), count)
    return table
