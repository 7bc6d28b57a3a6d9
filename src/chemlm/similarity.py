"""The applicability domain of a prediction: the highest ECFP4 Tanimoto similarity of a molecule to the training
fold, and which training molecule that is.

Fingerprints arrive packed (numpy.packbits of 2048 bits, as chemlm.fingerprints and chemlm.library write them). The
shared bits of a block of queries and every training molecule are one float32 matrix product (BLAS, on every core),
then Tanimoto = shared / (bits of one + bits of the other - shared). Queries go block by block, so memory stays
bounded by the block and the training fold, whatever the number of queries.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.io import atomic_path, write_csv

logger = logging.getLogger(__name__)

BLOCK = 1024  # queries per matrix product: 1024 x 33k training molecules is a 135 MB float32 block


@dataclass(frozen=True)
class Reference:
    """The training molecules' fingerprints (unpacked to float32, once) and ids."""

    bits: np.ndarray  # (n, 2048) float32 0/1
    counts: np.ndarray  # (n,) bits set
    mol_ids: np.ndarray

    @classmethod
    def from_packed(cls, packed: np.ndarray, mol_ids: np.ndarray) -> Reference:
        bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1).astype(np.float32)
        return cls(bits, bits.sum(axis=1), np.asarray(mol_ids, dtype=str))


def nearest(reference: Reference, packed_queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(highest Tanimoto similarity, index of that training molecule) of each query; a query with no bits set (an
    invalid molecule's zeros) has similarity 0 to everything and index -1."""
    similarity = np.zeros(len(packed_queries), dtype=np.float32)
    index = np.full(len(packed_queries), -1, dtype=np.int64)
    for start in range(0, len(packed_queries), BLOCK):
        queries = np.unpackbits(np.asarray(packed_queries[start : start + BLOCK], dtype=np.uint8), axis=1).astype(np.float32)
        shared = queries @ reference.bits.T
        union = queries.sum(axis=1)[:, None] + reference.counts[None, :] - shared
        with np.errstate(invalid="ignore", divide="ignore"):
            tanimoto = np.where(union > 0, shared / union, 0.0)
        best = tanimoto.argmax(axis=1)
        found = queries.any(axis=1)
        similarity[start : start + len(queries)] = np.where(found, tanimoto[np.arange(len(queries)), best], 0.0)
        index[start : start + len(queries)] = np.where(found, best, -1)
    return similarity, index


def neighbour_ids(reference: Reference, index: np.ndarray) -> np.ndarray:
    """The training molecule's id of each `nearest` index; empty where there is none (-1: no bits set)."""
    return np.where(index >= 0, reference.mol_ids[np.maximum(index, 0)], "")


def nearest_in_blocks(reference: Reference, packed: np.ndarray, rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`nearest` of a (memory-mapped) fingerprint array, `rows` queries at a time."""
    for start in range(0, len(packed), rows):
        yield nearest(reference, packed[start : start + rows])


def training_reference(molecules_csv: Path, split_csvs: list[Path], fingerprints_npz: Path) -> Reference:
    """The molecules in the train fold of any of the split files (the seeds' folds; one fold for a scaffold split)."""
    from chemlm.baselines import read_fingerprints
    from chemlm.folds import load_fold_tables

    training = None
    for split_csv in split_csvs:
        molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
        in_train = (molecules["fold"] == "train").to_numpy()
        training = in_train if training is None else training | in_train
    bits = read_fingerprints(Path(fingerprints_npz), molecules["mol_id"].to_numpy())
    return Reference(bits[training].astype(np.float32), bits[training].sum(axis=1).astype(np.float32), molecules.loc[training, "mol_id"].to_numpy(dtype=str))


def write_library_similarity(
    molecules_csv: Path, split_csvs: list[Path], fingerprints_npz: Path, library_npy: Path, out_csv: Path, rows: int = 10_000,
    first_row: int = 0,
) -> None:
    """For every row of a library (or of its shard whose first row is `first_row`), in order: `row`, `max_similarity`
    to the task's training fold and `neighbour_id` (empty for an invalid row)."""
    reference = training_reference(molecules_csv, split_csvs, fingerprints_npz)
    packed = np.load(library_npy, mmap_mode="r")
    with atomic_path(out_csv) as temporary, gzip.open(temporary, "wt", encoding="utf-8", newline="") as stream:
        for position, (similarity, index) in enumerate(nearest_in_blocks(reference, packed, rows)):
            start = first_row + position * rows
            pd.DataFrame({"row": np.arange(start, start + len(similarity)), "max_similarity": similarity.round(4),
                          "neighbour_id": neighbour_ids(reference, index)}).to_csv(stream, index=False, header=position == 0)
    logger.info("%s: %d rows against %d training molecules", library_npy, len(packed), len(reference.mol_ids))


def write_test_similarity(molecules_csv: Path, split_csv: Path, fingerprints_npz: Path, out_csv: Path) -> None:
    """For every test molecule of one split and seed: `mol_id`, `max_similarity` to that seed's training fold and
    `neighbour_id` (empty, with similarity 0, for a molecule without fingerprint bits: RDKit crashed on it), in
    molecules.csv order."""
    from chemlm.baselines import read_fingerprints
    from chemlm.folds import load_fold_tables

    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    bits = read_fingerprints(Path(fingerprints_npz), molecules["mol_id"].to_numpy())
    test = (molecules["fold"] == "test").to_numpy()
    reference = training_reference(molecules_csv, [split_csv], fingerprints_npz)
    similarity, index = nearest(reference, np.packbits(bits[test], axis=1))
    write_csv(pd.DataFrame({"mol_id": molecules.loc[test, "mol_id"].to_numpy(), "max_similarity": similarity.round(4),
                            "neighbour_id": neighbour_ids(reference, index)}), out_csv)
