"""The folds of a published split, matched to a task's molecules: the `predefined` split's input.

A task names its folds under `tasks.<name>.folds` (chemlm.tasks.FoldSource): a column of its own table, or one table
per fold. Every row's SMILES is canonicalised as featurization does it, so a fold file written with other SMILES of the
same molecules still matches. Every molecule of the task must end up in exactly one fold; rows that are invalid or
not among the task's molecules (absent from it, or dropped by featurization) are counted and listed, never silently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from chemlm.data.ingest import SMILES_COLUMN, location, read_source
from chemlm.featurize import parse_all, smiles_text
from chemlm.folds import FOLDS
from chemlm.io import InputError, read_csv, write_csv, write_json
from chemlm.isolation import Isolation
from chemlm.tasks import FoldSource, TaskSpec

logger = logging.getLogger(__name__)

# How data sets name their folds in a fold column; compared case-insensitively.
FOLD_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid", "test": "test"}
LISTED_ROWS = 100  # rows of each kind named in the JSON; all are counted


def fold_rows(task: TaskSpec, folds: FoldSource, source: Path, isolation: Isolation) -> pd.DataFrame:
    """`path, row, smiles, fold` of every row that names a fold: the task's table's fold column, or every fold file."""
    parts = []
    if folds.column is not None:
        table = read_source(source, task, isolation, columns=[folds.column])
        named = table[folds.column].fillna("").str.strip()
        fold = named.str.lower().map(FOLD_ALIASES)
        unknown = (named != "") & fold.isna()
        if unknown.any():
            row = int(unknown.to_numpy().nonzero()[0][0])
            raise InputError(f"{location(source, row)}: fold column '{folds.column}' has {named.iloc[row]!r}; "
                             f"expected one of: {', '.join(FOLD_ALIASES)}")
        parts.append(pd.DataFrame({"path": str(source), "row": range(len(table)), "smiles": smiles_text(table[SMILES_COLUMN]), "fold": fold}))
    for fold, path in folds.files:
        table = read_source(Path(path), task, isolation, columns=[])
        parts.append(pd.DataFrame({"path": path, "row": range(len(table)), "smiles": smiles_text(table[SMILES_COLUMN]), "fold": fold}))
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["fold"].notna()].reset_index(drop=True)


def listed(rows: pd.DataFrame, reason: pd.Series | None = None) -> list[dict[str, Any]]:
    """The first LISTED_ROWS rows as a user finds them: file and line, SMILES (and why)."""
    shown = rows.head(LISTED_ROWS)
    return [
        {"where": location(Path(record.path), int(record.row)), "smiles": record.smiles, "fold": record.fold,
         **({"reason": reason[index]} if reason is not None else {})}
        for index, record in shown.iterrows()
    ]


def match_folds(molecules: pd.DataFrame, rows: pd.DataFrame, task: TaskSpec, isomeric: bool,
                isolation: Isolation = Isolation()) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(`mol_id, fold` in molecules order, what the matching found). Raises InputError, naming the rows, when a
    molecule is in two folds or in none."""
    parsed = parse_all(rows["smiles"].tolist(), isomeric, isolation)
    rows = rows.assign(canonical=[result.canonical for result in parsed])
    reasons = pd.Series([result.error for result in parsed], index=rows.index)
    invalid = rows["canonical"].isna()
    task_smiles = set(molecules["smiles"])
    outside = ~invalid & ~rows["canonical"].isin(task_smiles)
    matched = rows[~invalid & ~outside]
    folds_of = matched.groupby("canonical")["fold"].unique()
    in_several = folds_of[folds_of.map(len) > 1]
    if len(in_several):
        canonical = in_several.index[0]
        where = [f"{location(Path(record.path), int(record.row))} ({record.fold})" for record in matched[matched["canonical"] == canonical].itertuples()]
        raise InputError(f"task '{task.name}': molecule {canonical} is in more than one fold of the predefined split: "
                         f"{'; '.join(where[:4])}; and {len(in_several) - 1} more such molecules")
    fold = molecules["smiles"].map(folds_of.map(lambda found: found[0]))
    unassigned = molecules[fold.isna()]
    if len(unassigned):
        examples = ", ".join(f"{record.mol_id} ({record.smiles})" for record in unassigned.head(3).itertuples())
        raise InputError(f"task '{task.name}': {len(unassigned)} of its {len(molecules)} molecules are in no fold of the "
                         f"predefined split (tasks.{task.name}.folds), e.g. {examples}")
    assignment = pd.DataFrame({"mol_id": molecules["mol_id"].astype(str).to_numpy(), "fold": fold.to_numpy()})
    by_source = rows.assign(invalid=invalid, outside=outside).groupby(["path", "fold"], sort=False)
    found = {
        "sources": [
            {"path": path, "fold": fold_name, "rows": len(group), "matched": int((~group["invalid"] & ~group["outside"]).sum()),
             "invalid": int(group["invalid"].sum()), "not_in_task": int(group["outside"].sum())}
            for (path, fold_name), group in by_source
        ],
        "molecules": {name: int((assignment["fold"] == name).sum()) for name in FOLDS},
        "invalid_rows": int(invalid.sum()),
        "rows_not_in_task": int(outside.sum()),
        "invalid": listed(rows[invalid], reasons),
        "not_in_task": listed(rows[outside]),
    }
    logger.info("task '%s', predefined folds: %s; %d invalid rows, %d rows not among the task's molecules", task.name,
                ", ".join(f"{name} {count}" for name, count in found["molecules"].items()), found["invalid_rows"], found["rows_not_in_task"])
    return assignment, found


def write_predefined_folds(molecules_csv: str, source: str, task: TaskSpec, folds: FoldSource, isomeric: bool,
                           isolation: Isolation, out_csv: str, out_json: str) -> None:
    """Match the task's published `folds` to its molecules (chemlm.featurize's molecules table): `out_csv` holds
    `mol_id, fold`, `out_json` what the matching found. `source` is the task's table (read for a fold column)."""
    molecules = read_csv(molecules_csv, dtype={"mol_id": str})
    assignment, found = match_folds(molecules, fold_rows(task, folds, Path(source), isolation), task, isomeric, isolation)
    write_json(found, out_json)
    write_csv(assignment, out_csv)
