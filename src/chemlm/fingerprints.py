"""ECFP4 fingerprints (Morgan, radius 2, 2048 bits) of a task's molecules, for the fingerprint baselines.

The file holds `mol_id` (str), `bits` (uint8, n x 256: the 2048 bits packed by `numpy.packbits` along
each row) and `n_bits` (2048), in molecules.csv order. `chemlm.baselines.read_fingerprints` unpacks it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from chemlm.io import InputError, atomic_path, read_csv

logger = logging.getLogger(__name__)

ECFP4_RADIUS = 2
ECFP4_BITS = 2048


def ecfp4(smiles: Sequence[str], mol_ids: Sequence[str]) -> np.ndarray:
    """ECFP4 bit vectors (n, 2048) as uint8 0/1 of canonical SMILES (as molecules.csv holds them)."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=ECFP4_RADIUS, fpSize=ECFP4_BITS)
    bits = np.zeros((len(smiles), ECFP4_BITS), dtype=np.uint8)
    for row, (text, mol_id) in enumerate(zip(smiles, mol_ids)):
        molecule = Chem.MolFromSmiles(text)
        if molecule is None:
            raise InputError(f"molecule '{mol_id}': RDKit cannot parse its SMILES '{text}'; rerun featurize")
        bits[row] = generator.GetFingerprintAsNumPy(molecule)
    return bits


def write_ecfp4(molecules_csv: Path, out_npz: Path) -> None:
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, "smiles": str})
    bits = ecfp4(molecules["smiles"].tolist(), molecules["mol_id"].tolist())
    with atomic_path(out_npz) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle, mol_id=molecules["mol_id"].to_numpy(dtype=str), bits=np.packbits(bits, axis=1), n_bits=ECFP4_BITS
        )
    logger.info("ECFP4 of %d molecules: %.1f bits set on average", len(bits), bits.sum(axis=1).mean() if len(bits) else 0.0)
