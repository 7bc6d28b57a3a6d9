"""ECFP4 fingerprints (Morgan, radius 2, 2048 bits) of a task's molecules, for the fingerprint baselines (bits) and
LightGBM (counts, chemlm.descriptors).

The file holds `mol_id` (str), `bits` (uint8, n x 256: the 2048 bits packed by `numpy.packbits` along
each row), `n_bits` (2048), in molecules.csv order, and `crashed_mol_id`: molecules whose fingerprint crashed RDKit
(all bits 0). `chemlm.baselines.read_fingerprints` unpacks it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from chemlm.io import InputError, atomic_path, read_csv
from chemlm.isolation import Crash, Isolation, map_isolated

logger = logging.getLogger(__name__)

ECFP4_RADIUS = 2
ECFP4_BITS = 2048


MAX_COUNT = 255  # counts are stored as uint8; no ECFP4 environment occurs more often in a drug-like molecule


def ecfp4_chunk(smiles: list[str], counts: bool = False) -> list[np.ndarray | str]:
    """ECFP4 bits (uint8 0/1), or with `counts` each folded bit's count (uint8, at most MAX_COUNT), of each SMILES,
    or why RDKit could not parse it."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=ECFP4_RADIUS, fpSize=ECFP4_BITS)
    fingerprint = generator.GetCountFingerprintAsNumPy if counts else generator.GetFingerprintAsNumPy
    results: list[np.ndarray | str] = []
    for text in smiles:
        molecule = Chem.MolFromSmiles(text)
        results.append("RDKit cannot parse it" if molecule is None else np.minimum(fingerprint(molecule), MAX_COUNT).astype(np.uint8))
    return results


def ecfp4(
    smiles: Sequence[str], mol_ids: Sequence[str], isolation: Isolation = Isolation(), counts: bool = False
) -> tuple[np.ndarray, list[str]]:
    """ECFP4 bit vectors (n, 2048) as uint8 0/1 (with `counts`: the folded counts) of canonical SMILES (as
    molecules.csv holds them), and the mol_ids of molecules that crashed RDKit (chemlm.isolation), whose bits are all 0."""
    bits = np.zeros((len(smiles), ECFP4_BITS), dtype=np.uint8)
    crashed = []
    results = map_isolated(partial(ecfp4_chunk, counts=counts), smiles, isolation)
    for row, (result, text, mol_id) in enumerate(zip(results, smiles, mol_ids)):
        if isinstance(result, Crash):
            crashed.append(mol_id)
            logger.warning("molecule '%s': %s; its fingerprint is left empty", mol_id, result.reason)
        elif isinstance(result, str):
            raise InputError(f"molecule '{mol_id}': {result}: '{text}'; rerun featurize")
        else:
            bits[row] = result
    return bits, crashed


def write_ecfp4(molecules_csv: Path, out_npz: Path, isolation: Isolation = Isolation()) -> None:
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, "smiles": str})
    bits, crashed = ecfp4(molecules["smiles"].tolist(), molecules["mol_id"].tolist(), isolation)
    with atomic_path(out_npz) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(
            handle, mol_id=molecules["mol_id"].to_numpy(dtype=str), bits=np.packbits(bits, axis=1), n_bits=ECFP4_BITS,
            crashed_mol_id=np.array(crashed, dtype=str),
        )
    logger.info("ECFP4 of %d molecules: %.1f bits set on average", len(bits), bits.sum(axis=1).mean() if len(bits) else 0.0)
