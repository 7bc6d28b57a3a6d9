"""RDKit descriptors as multi-task regression (MTR) targets, normalised with the training corpus's mean and sd, and,
with ECFP4 counts, as the features of the LightGBM baseline (`write_count_features`).

A descriptor RDKit cannot compute for a molecule, or computes as NaN or infinity, becomes a missing target:
counted, left out of the loss and of R2, never imputed. So MTR sees the same molecules as MLM, and no
made-up value is learned. LightGBM takes such a value as missing too (NaN), as it takes any missing feature.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors

from chemlm.io import InputError, atomic_path, read_csv
from chemlm.isolation import Crash, Isolation, map_isolated

logger = logging.getLogger(__name__)


@dataclass
class DescriptorTargets:
    """Normalised targets (NaN = missing) in corpus order, and how they were made."""

    names: tuple[str, ...]
    targets: np.ndarray  # float32 (molecules, descriptors)
    mean: np.ndarray  # float64 (descriptors,): training-part mean of the finite values
    std: np.ndarray  # float64 (descriptors,): their sd; 1 where it is 0, so constant descriptors stay 0
    qc: dict[str, Any]


def load_descriptor_names(path: str | Path) -> tuple[str, ...]:
    """The `names` of a descriptor list file, each checked to be an RDKit descriptor."""
    names = tuple(json.loads(Path(path).read_text())["names"])
    known = {name for name, _ in Descriptors._descList}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"{path}: '{unknown[0]}' is not an RDKit descriptor ({len(unknown)} unknown names)")
    if len(set(names)) != len(names):
        raise InputError(f"{path}: descriptor names repeat")
    return names


def descriptor_chunk(smiles: list[str], names: tuple[str, ...]) -> list[np.ndarray]:
    functions = dict(Descriptors._descList)
    rows = []
    with rdBase.BlockLogs():
        for text in smiles:
            mol = Chem.MolFromSmiles(text)
            row = np.full(len(names), np.nan)
            if mol is not None:
                for column, name in enumerate(names):
                    try:
                        row[column] = functions[name](mol)
                    except Exception:  # noqa: BLE001 - RDKit descriptors raise many types on odd molecules; recorded as missing
                        pass
            rows.append(row)
    return rows


def compute_descriptors(smiles: Sequence[str], names: tuple[str, ...], isolation: Isolation = Isolation()) -> np.ndarray:
    """float64 (molecules, descriptors) in `names` order; NaN or infinity where RDKit gives no finite value, and a
    row of NaN (missing targets) for a molecule that crashes RDKit (chemlm.isolation)."""
    rows = map_isolated(partial(descriptor_chunk, names=names), smiles, isolation)
    crashed = [position for position, row in enumerate(rows) if isinstance(row, Crash)]
    if crashed:
        logger.warning("%d molecule(s) crashed RDKit: all their descriptors are missing (first: row %d)", len(crashed), crashed[0])
    rows = [np.full(len(names), np.nan) if isinstance(row, Crash) else row for row in rows]
    return np.vstack(rows) if rows else np.empty((0, len(names)))


def normalise(values: np.ndarray, train_mask: np.ndarray, names: tuple[str, ...]) -> DescriptorTargets:
    """(value - training mean) / training sd over finite values; non-finite values become NaN and are counted."""
    finite = np.isfinite(values)
    train = np.where(finite[train_mask], values[train_mask], np.nan)
    counts = finite[train_mask].sum(axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.where(counts > 0, np.nansum(train, axis=0) / np.maximum(counts, 1), 0.0)
        std = np.sqrt(np.where(counts > 0, np.nansum((train - mean) ** 2, axis=0) / np.maximum(counts, 1), 0.0))
    constant = std == 0
    std = np.where(constant, 1.0, std)
    targets = np.where(finite, (values - mean) / std, np.nan).astype(np.float32)
    missing = (~finite).sum(axis=0)
    qc = {
        "molecules": int(len(values)),
        "descriptors": len(names),
        "non_finite_values": int(missing.sum()),
        "molecules_with_non_finite": int((~finite).any(axis=1).sum()),
        "non_finite_by_descriptor": {name: int(count) for name, count in zip(names, missing) if count},
        "constant_in_training": [name for name, flag in zip(names, constant) if flag],
        "max_abs_normalised": float(np.nanmax(np.abs(targets))) if finite.any() else None,
        "handling": "non-finite values are missing targets: left out of the loss and of R2, never imputed",
    }
    logger.info(
        "%d descriptors of %d molecules: %d non-finite values in %d molecules (missing targets); %d constant in training",
        len(names), len(values), qc["non_finite_values"], qc["molecules_with_non_finite"], int(constant.sum()),
    )
    return DescriptorTargets(names, targets, mean, std, qc)


def descriptor_targets(smiles: Sequence[str], train_mask: np.ndarray, names: tuple[str, ...], isolation: Isolation = Isolation()) -> DescriptorTargets:
    return normalise(compute_descriptors(smiles, names, isolation), np.asarray(train_mask, dtype=bool), names)


def corpus_descriptor_targets(smiles_csv: str | Path, names_json: str | Path, isolation: Isolation = Isolation()) -> DescriptorTargets:
    """Targets for the corpus file the pretrain_corpus rule writes (smiles, fold), in its row order."""
    corpus = read_csv(smiles_csv, dtype={"smiles": str, "fold": str}, keep_default_na=False)
    train = (corpus["fold"] == "train").to_numpy()
    return descriptor_targets(corpus["smiles"].tolist(), train, load_descriptor_names(names_json), isolation)


def write_targets(result: DescriptorTargets, path: str | Path) -> None:
    """The npz the pretrain rule reads: names, targets (float32, NaN = missing), mean, std."""
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, names=np.array(result.names), targets=result.targets, mean=result.mean, std=result.std)


def write_count_features(
    smiles: Sequence[str], ids: Sequence[str], names_json: str | Path, out_npz: str | Path, isolation: Isolation = Isolation()
) -> None:
    """The LightGBM baseline's features of canonical SMILES: `mol_id`, `counts` (uint8, n x 2048 folded ECFP4 counts),
    `descriptors` (float32, n x the descriptors of `names_json`, NaN where RDKit gives no finite value) and `names`.
    An empty SMILES (an invalid library row) gets zero counts and missing descriptors."""
    from chemlm.fingerprints import ECFP4_BITS, ecfp4

    names = load_descriptor_names(names_json)
    present = np.array([bool(text) for text in smiles], dtype=bool)
    parsed = [text for text in smiles if text]
    counts = np.zeros((len(smiles), ECFP4_BITS), dtype=np.uint8)
    counts[present], _ = ecfp4(parsed, [mol_id for mol_id, text in zip(ids, smiles) if text], isolation, counts=True)
    values = np.full((len(smiles), len(names)), np.nan, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        values[present] = compute_descriptors(parsed, names, isolation).astype(np.float32)
    values[~np.isfinite(values)] = np.nan
    with atomic_path(out_npz) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, mol_id=np.asarray(ids, dtype=str), counts=counts, descriptors=values, names=np.array(names))
    logger.info("ECFP4 counts and %d descriptors of %d molecules (%d missing descriptor values)", len(names), len(smiles),
                int(np.isnan(values[present]).sum()))


def write_task_features(molecules_csv: str | Path, names_json: str | Path, out_npz: str | Path, isolation: Isolation = Isolation()) -> None:
    """`write_count_features` of a task's molecules.csv, in its order."""
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, "smiles": str}, keep_default_na=False)
    write_count_features(molecules["smiles"].tolist(), molecules["mol_id"].tolist(), names_json, out_npz, isolation)


def write_library_features(library_csv: str | Path, names_json: str | Path, out_npz: str | Path, isolation: Isolation = Isolation()) -> None:
    """`write_count_features` of a library shard's rows (its canonical SMILES; invalid rows have none), in row order."""
    rows = read_csv(library_csv, dtype={"row": str, "smiles": str}, keep_default_na=False, usecols=["row", "smiles"])
    write_count_features(rows["smiles"].tolist(), rows["row"].tolist(), names_json, out_npz, isolation)
