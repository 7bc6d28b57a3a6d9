"""Butina clusters of a task's molecules by ECFP4 (radius 2, 1,024 bits) at Tanimoto distance 0.65: the groups of the
`cluster_cv` split, with the method-comparison guidelines' settings.

Computed from ecfp4.npz (2,048 bits) without RDKit: a Morgan bit is its hash modulo the length, so folding the two
halves of the 2,048 bits together gives exactly RDKit's 1,024-bit fingerprint. Similarities are taken block by block and
only neighbours within the cutoff are kept, so large tasks fit in memory. The clustering is RDKit's
Butina.ClusterData (no reordering): molecules with the most neighbours first become centroids of their unassigned
neighbours.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.io import read_csv, write_csv

logger = logging.getLogger(__name__)

CLUSTER_BITS = 1024
DISTANCE_CUTOFF = 0.65
BLOCK_ROWS = 2048


def fold_bits(bits: np.ndarray, n_bits: int = CLUSTER_BITS) -> np.ndarray:
    """(n, k * n_bits) 0/1 bits folded to (n, n_bits) by OR."""
    return bits.reshape(len(bits), -1, n_bits).max(axis=1)


def neighbours(bits: np.ndarray, cutoff: float = DISTANCE_CUTOFF) -> list[np.ndarray]:
    """For each molecule, the other molecules within Tanimoto distance `cutoff` (similarity at least 1 − cutoff)."""
    matrix = bits.astype(np.float64)  # float32 would move pairs across the cutoff
    counts = matrix.sum(axis=1)
    found = []
    for start in range(0, len(matrix), BLOCK_ROWS):
        block = matrix[start:start + BLOCK_ROWS]
        shared = block @ matrix.T
        union = counts[start:start + BLOCK_ROWS, None] + counts[None, :] - shared
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.where(union > 0, shared / union, 0.0)  # two empty fingerprints are not alike
        for offset, row in enumerate(similarity):
            close = np.flatnonzero(1.0 - row <= cutoff)
            found.append(close[close != start + offset])
    return found


def butina(neighbour_lists: list[np.ndarray]) -> np.ndarray:
    """The cluster of each molecule, numbered from 0 in the order the clusters form."""
    # as RDKit sorts (count, index) pairs in reverse: ties go to the later molecule first
    order = sorted(range(len(neighbour_lists)), key=lambda index: (len(neighbour_lists[index]), index), reverse=True)
    cluster = np.full(len(neighbour_lists), -1)
    formed = 0
    for centroid in order:
        if cluster[centroid] >= 0:
            continue
        members = neighbour_lists[centroid]
        cluster[members[cluster[members] < 0]] = formed
        cluster[centroid] = formed
        formed += 1
    return cluster


def write_clusters(molecules_csv: Path, fingerprints_npz: Path, out_csv: Path) -> None:
    from chemlm.baselines import read_fingerprints

    molecules = read_csv(molecules_csv, dtype={"mol_id": str})
    bits = fold_bits(read_fingerprints(fingerprints_npz, molecules["mol_id"].to_numpy()))
    clusters = butina(neighbours(bits))
    write_csv(pd.DataFrame({"mol_id": molecules["mol_id"], "cluster": clusters}), out_csv)
    sizes = np.bincount(clusters)
    logger.info("%d molecules in %d Butina clusters (ECFP4 %d bits, distance %.2f): largest %d, singletons %d",
                len(clusters), len(sizes), CLUSTER_BITS, DISTANCE_CUTOFF, sizes.max(initial=0), int((sizes == 1).sum()))
