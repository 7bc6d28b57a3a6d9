"""The pre-training corpus: SMILES lines -> unique canonical molecules, every downstream task's molecules removed,
a held-out part.

Every line ends up counted: invalid, duplicate, a molecule of a downstream task, left out by `max_molecules`, or kept.
Formats are those of docs/design.md (pre-training files).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase

from chemlm.config import CorpusSettings
from chemlm.io import InputError, is_gzip, read_csv
from chemlm.isolation import Crash, Isolation, map_isolated

logger = logging.getLogger(__name__)

INVALID_EXAMPLES = 20
EXAMPLE_CHARACTERS = 120  # of an invalid SMILES in qc.json: a 20,000-atom chain is shown by its start


@dataclass
class PreparedCorpus:
    table: pd.DataFrame  # smiles (canonical), fold (train | holdout)
    qc: dict[str, Any]


def read_smiles_lines(path: str | Path) -> tuple[list[str], int]:
    """The first field of each non-blank line of a plain or gzipped text file, and the number of blank lines."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            fields = [line.split(maxsplit=1) for line in handle]
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"{path}: not a readable SMILES file ({type(error).__name__})") from None
    smiles = [parts[0] for parts in fields if parts]
    if not smiles:
        raise InputError(f"{path}: no SMILES in it")
    return smiles, len(fields) - len(smiles)


def canonical_chunk(smiles: list[str], isomeric: bool) -> list[str | None]:
    """Canonical SMILES with the RDKit calls of chemlm.featurize.parse_smiles (so they match task molecules); None if invalid."""
    canonical: list[str | None] = []
    with rdBase.BlockLogs():
        for text in smiles:
            mol = Chem.MolFromSmiles(text)
            canonical.append(None if mol is None else Chem.MolToSmiles(mol, isomericSmiles=isomeric))
    return canonical


def canonicalise(smiles: Sequence[str], isomeric: bool, isolation: Isolation = Isolation()) -> list[str | Crash | None]:
    """Canonical SMILES, None where RDKit rejects one, a Crash where it kills its worker (see chemlm.isolation)."""
    return map_isolated(partial(canonical_chunk, isomeric=isomeric), smiles, isolation)


def task_molecule_smiles(molecules_files: Sequence[str | Path]) -> set[str]:
    """Canonical SMILES of every molecule of the given molecules.csv files (all folds of every split and seed)."""
    smiles: set[str] = set()
    for path in molecules_files:
        table = read_csv(path, usecols=["smiles"], dtype={"smiles": str}, keep_default_na=False)
        smiles.update(table["smiles"])
    return smiles


def holdout_mask(count: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    size = int(round(count * fraction))
    if size < 1 or size >= count:
        raise InputError(
            f"pretrain: a holdout_fraction of {fraction} of {count} molecules leaves an empty training or held-out part"
        )
    mask = np.zeros(count, dtype=bool)
    mask[rng.choice(count, size=size, replace=False)] = True
    return mask


def prepare_corpus(
    smiles: Sequence[str], task_smiles: set[str], settings: CorpusSettings, blank_lines: int = 0, isolation: Isolation = Isolation()
) -> PreparedCorpus:
    """Canonicalise, drop invalid and duplicate SMILES, remove downstream task molecules, sample, split off the holdout."""
    canonical = canonicalise(smiles, settings.isomeric_smiles, isolation)
    invalid = [text for text, form in zip(smiles, canonical) if not isinstance(form, str)]
    crashed = [text for text, form in zip(smiles, canonical) if isinstance(form, Crash)]
    unique = list(dict.fromkeys(form for form in canonical if isinstance(form, str)))
    duplicates = len(smiles) - len(invalid) - len(unique)
    if settings.exclude_task_molecules:
        kept = [form for form in unique if form not in task_smiles]
    else:
        kept = unique
    overlap = len(unique) - len(kept)
    rng = np.random.default_rng(settings.seed)
    if settings.max_molecules and len(kept) > settings.max_molecules:
        chosen = np.sort(rng.choice(len(kept), size=settings.max_molecules, replace=False))
        kept = [kept[index] for index in chosen]
    left_out = len(unique) - overlap - len(kept)
    holdout = holdout_mask(len(kept), settings.holdout_fraction, rng)
    table = pd.DataFrame({"smiles": kept, "fold": np.where(holdout, "holdout", "train")})
    qc = {
        "lines": len(smiles) + blank_lines,
        "blank_lines": blank_lines,
        "invalid": len(invalid),
        "crashed": len(crashed),
        "duplicates": duplicates,
        "task_molecules": len(task_smiles) if settings.exclude_task_molecules else None,
        "task_molecules_removed": overlap if settings.exclude_task_molecules else None,
        "left_out_by_max_molecules": left_out,
        "molecules": len(kept),
        "train": int((~holdout).sum()),
        "holdout": int(holdout.sum()),
        "invalid_examples": [text[:EXAMPLE_CHARACTERS] for text in invalid[:INVALID_EXAMPLES]],
        "crashed_examples": [f"{text[:EXAMPLE_CHARACTERS]} ({form.reason})" for text, form in zip(smiles, canonical)
                             if isinstance(form, Crash)][:INVALID_EXAMPLES],
    }
    logger.info(
        "corpus: %d lines, %d invalid (%d of them crashed RDKit), %d duplicates, %s removed as molecules of downstream tasks, %d left out by "
        "max_molecules: %d molecules (train %d, holdout %d)",
        qc["lines"], len(invalid), len(crashed), duplicates, overlap if settings.exclude_task_molecules else "none (not asked)",
        left_out, len(kept), qc["train"], qc["holdout"],
    )
    return PreparedCorpus(table, qc)


def build_corpus(
    corpus_path: str | Path,
    molecules_files: Sequence[str | Path],
    settings: CorpusSettings,
    isolation: Isolation = Isolation(),
) -> PreparedCorpus:
    """The corpus file -> the molecules pre-training uses; `molecules_files` are every task's molecules.csv."""
    smiles, blank_lines = read_smiles_lines(corpus_path)
    task_smiles = task_molecule_smiles(molecules_files) if settings.exclude_task_molecules else set()
    return prepare_corpus(smiles, task_smiles, settings, blank_lines, isolation)
