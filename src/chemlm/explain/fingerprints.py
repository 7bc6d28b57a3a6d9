"""Atom weights of the fingerprint models: each atom's weight is the change in the prediction when the ECFP4
environments that contain it are removed from the molecule's fingerprint, as RDKit's
SimilarityMaps.GetAtomicWeightsForModel computes it, on the workflow's own features (chemlm.fingerprints: Morgan
radius 2, 2,048 folded bits; LightGBM's folded counts beside its whole-molecule descriptors, which stay as they are).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from chemlm.fingerprints import ECFP4_BITS, ECFP4_RADIUS, MAX_COUNT


def environment_counts(molecule: Chem.Mol) -> tuple[np.ndarray, np.ndarray]:
    """(folded ECFP4 counts (bits), per atom the count each bit loses without the environments containing it
    (atoms x bits)). A bit vector is the counts above 0."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=ECFP4_RADIUS, fpSize=ECFP4_BITS)
    output = rdFingerprintGenerator.AdditionalOutput()
    output.AllocateBitInfoMap()
    counts = generator.GetCountFingerprintAsNumPy(molecule, additionalOutput=output).astype(np.int64)
    lost = np.zeros((molecule.GetNumAtoms(), ECFP4_BITS), dtype=np.int64)
    for bit, environments in output.GetBitInfoMap().items():
        for center, radius in environments:
            if radius == 0:
                members = {center}
            else:
                atom_map: dict[int, int] = {}
                Chem.PathToSubmol(molecule, Chem.FindAtomEnvironmentOfRadiusN(molecule, radius, center), atomMap=atom_map)
                members = set(atom_map)
            for atom in members:
                lost[atom, bit] += 1
    return counts, lost


def atom_weights(molecule: Chem.Mol, predict: Callable[[np.ndarray], np.ndarray], counts: bool = False,
                 descriptors: np.ndarray | None = None) -> np.ndarray:
    """Each atom's weight: `predict` of the whole molecule's features minus `predict` of them without the atom's
    environments. `predict` maps feature rows (n, features) to one output per row; features are ECFP4 bits, or with
    `counts` the folded counts (capped as chemlm.fingerprints caps them) followed by `descriptors`."""
    full, lost = environment_counts(molecule)
    without = np.maximum(full[None, :] - lost, 0)
    if counts:
        rows = np.minimum(np.vstack([full[None, :], without]), MAX_COUNT)
        if descriptors is not None:
            rows = np.hstack([rows, np.repeat(descriptors[None, :], len(rows), axis=0)])
    else:
        # a bit vector loses every bit an environment containing the atom sets (SimilarityMaps' xor)
        rows = np.vstack([full[None, :] > 0, (full[None, :] > 0) & (lost == 0)]).astype(np.uint8)
    predicted = np.asarray(predict(rows), dtype=float).reshape(len(rows))
    return predicted[0] - predicted[1:]
