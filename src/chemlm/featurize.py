"""RDKit featurization: a task's table -> unique molecules with canonical SMILES and scaffolds, plus QC.

Formats are those of docs/design.md, item 3. Every source row ends up either in a molecule (as itself or
merged into an earlier duplicate) or in the invalid list with a reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds.MurckoScaffold import MurckoScaffoldSmiles

from chemlm.data.sdf import READ_ERROR
from chemlm.io import InputError
from chemlm.isolation import Crash, Isolation, map_isolated
from chemlm.rdkit_messages import rdkit_error_text
from chemlm.tasks import TaskSpec, TaskType

logger = logging.getLogger(__name__)

REASON_EMPTY = "empty SMILES"
REASON_MISSING_LABEL = "missing label"
REASON_CONFLICTING = "conflicting labels between duplicates"
INVALID_EXAMPLES = 20
EXAMPLE_CHARACTERS = 120  # of an invalid SMILES in qc.json: a 20,000-atom chain is shown by its start
INVALID_COLUMNS = ["row", "mol_id", "smiles", "reason"]
DUPLICATE_COLUMNS = ["smiles", "mol_ids", "rows", "conflicting"]


@dataclass
class ParsedSmiles:
    """One SMILES after RDKit: canonical SMILES and scaffold, or why it was rejected."""

    canonical: str | None = None
    scaffold: str | None = None
    error: str | None = None


@dataclass
class Featurized:
    """The four outputs of featurization (docs/design.md, item 3)."""

    molecules: pd.DataFrame
    invalid: pd.DataFrame
    duplicates: pd.DataFrame
    qc: dict[str, Any]


def parse_smiles(smiles: str, isomeric: bool) -> ParsedSmiles:
    """Parse (with sanitization) once, and derive the canonical SMILES and Bemis-Murcko scaffold.

    The scaffold call is exactly the one deepchem's ScaffoldSplitter makes, so scaffold splits match it.
    Call inside `rdBase.BlockLogs()` to keep RDKit's warnings off stderr.
    """
    if not smiles.strip():
        return ParsedSmiles(error=REASON_EMPTY)
    # Capturing the error log per molecule ties each RDKit message to the SMILES that caused it.
    with rdBase.CaptureErrorLog() as capture:
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return ParsedSmiles(error=f"invalid SMILES: {rdkit_error_text(capture.messages)}")
    return ParsedSmiles(
        canonical=Chem.MolToSmiles(mol, isomericSmiles=isomeric),
        scaffold=MurckoScaffoldSmiles(mol=mol, includeChirality=False),
    )


def parse_chunk(smiles: list[str], isomeric: bool) -> list[ParsedSmiles]:
    with rdBase.BlockLogs():
        return [parse_smiles(text, isomeric) for text in smiles]


def parse_all(smiles: Sequence[str], isomeric: bool, isolation: Isolation = Isolation()) -> list[ParsedSmiles]:
    """Every SMILES parsed in worker processes (chemlm.isolation): one that crashes RDKit is rejected with the
    signal as its reason, and the others are parsed as in a run without it."""
    parsed = map_isolated(partial(parse_chunk, isomeric=isomeric), smiles, isolation)
    return [ParsedSmiles(error=result.reason) if isinstance(result, Crash) else result for result in parsed]


def check_columns(table: pd.DataFrame, task: TaskSpec) -> None:
    for column in ("mol_id", "row", "smiles", *task.label_columns):
        if column not in table.columns:
            raise InputError(
                f"task '{task.name}': featurize input has no column '{column}'; columns are: {', '.join(table.columns)}"
            )


def smiles_text(values: pd.Series) -> list[str]:
    """SMILES as stripped strings; missing values become empty strings."""
    return [value.strip() if isinstance(value, str) else "" for value in values]


@dataclass
class MergedGroup:
    """Rows sharing one canonical SMILES, merged into the first one."""

    positions: list[int]
    labels: dict[str, Any]
    conflicting: bool


def merge_labels(values: pd.Series, task_type: TaskType) -> tuple[Any, bool]:
    """One label from a duplicate group's values: (value, conflicting).

    Classification keeps the value the rows agree on and makes a disagreement missing; regression
    averages the values and flags that they differed.
    """
    present = values.dropna()
    distinct = present.unique()
    if len(distinct) == 0:
        return np.nan, False
    if len(distinct) == 1:
        return distinct[0], False
    if task_type is TaskType.REGRESSION:
        return float(present.astype(float).mean()), True
    return np.nan, True


def merge_group(rows: pd.DataFrame, task: TaskSpec, positions: list[int]) -> MergedGroup:
    labels: dict[str, Any] = {}
    conflicting = False
    for column in task.label_columns:
        labels[column], disagreed = merge_labels(rows[column], task.type)
        conflicting |= disagreed
    return MergedGroup(positions=positions, labels=labels, conflicting=conflicting)


def rejection(table: pd.DataFrame, smiles: list[str], position: int, reason: str) -> dict[str, Any]:
    return {
        "row": table["row"].iat[position],
        "mol_id": table["mol_id"].iat[position],
        "smiles": smiles[position],
        "reason": reason,
    }


def numeric_labels(table: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """Labels as floats for every type but multi-class, so merged groups can hold a mean or a missing value."""
    if task.type is TaskType.MULTICLASS:
        return table
    table = table.copy()
    for column in task.label_columns:
        try:
            table[column] = table[column].astype(float)
        except (TypeError, ValueError):
            raise InputError(f"task '{task.name}': label column '{column}' has non-numeric values") from None
    return table


@dataclass
class Screening:
    """Which rows go on to become molecules, and why the others were rejected."""

    kept: list[int]
    rejected: list[dict[str, Any]]
    empty: int
    unparsable: int
    missing_label: int


def screen_rows(table: pd.DataFrame, task: TaskSpec, smiles: list[str], parsed: list[ParsedSmiles]) -> Screening:
    has_label = table[list(task.label_columns)].notna().any(axis=1).to_numpy()
    screening = Screening(kept=[], rejected=[], empty=0, unparsable=0, missing_label=0)
    for position, result in enumerate(parsed):
        if result.error == REASON_EMPTY:
            screening.empty += 1
        elif result.error is not None:
            screening.unparsable += 1
        elif not has_label[position]:
            screening.missing_label += 1
        else:
            screening.kept.append(position)
            continue
        screening.rejected.append(rejection(table, smiles, position, result.error or REASON_MISSING_LABEL))
    return screening


def duplicates_frame(table: pd.DataFrame, canonical: pd.Series, merged: list[MergedGroup]) -> pd.DataFrame:
    records = [
        {
            "smiles": canonical[group.positions[0]],
            "mol_ids": ";".join(str(table["mol_id"].iat[position]) for position in group.positions),
            "rows": ";".join(str(table["row"].iat[position]) for position in group.positions),
            "conflicting": group.conflicting,
        }
        for group in merged
    ]
    return pd.DataFrame(records, columns=DUPLICATE_COLUMNS)


def invalid_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    invalid = pd.DataFrame(records, columns=INVALID_COLUMNS)
    return invalid.sort_values("row", kind="stable").reset_index(drop=True)


@dataclass
class Merging:
    """Molecules after merging duplicates, the merged groups, and how many molecules were lost to conflicts."""

    molecules: pd.DataFrame
    groups: list[MergedGroup]
    dropped_conflicting: int
    rejected: list[dict[str, Any]]


def merge_duplicates(table: pd.DataFrame, task: TaskSpec, smiles: list[str], molecules: pd.DataFrame) -> Merging:
    """Merge rows of `molecules` (indexed by position in `table`) that share a canonical SMILES into the first."""
    canonical = molecules["smiles"]
    # Grouping only the repeated SMILES keeps this cheap when, as usual, almost every molecule is unique.
    repeated = canonical[canonical.duplicated(keep=False)]
    groups = [
        merge_group(table.loc[positions], task, list(positions))
        for positions in repeated.groupby(repeated, sort=False).groups.values()
    ]
    molecules = molecules.copy()
    dropped: list[int] = []
    rejected: list[dict[str, Any]] = []
    dropped_conflicting = 0
    for group in groups:
        first, *rest = group.positions
        dropped.extend(rest)
        # A molecule whose every label conflicted has nothing left to learn from.
        if all(pd.isna(value) for value in group.labels.values()):
            dropped_conflicting += 1
            dropped.append(first)
            rejected.extend(rejection(table, smiles, position, REASON_CONFLICTING) for position in group.positions)
            continue
        for column, value in group.labels.items():
            molecules.at[first, column] = value
    return Merging(
        molecules=molecules.drop(index=dropped).reset_index(drop=True),
        groups=groups,
        dropped_conflicting=dropped_conflicting,
        rejected=rejected,
    )


def parse_table(table: pd.DataFrame, smiles: list[str], isomeric: bool, isolation: Isolation) -> list[ParsedSmiles]:
    """Every row's SMILES parsed; a row the reader could not read (an SD record: `read_error`) keeps that reason."""
    if READ_ERROR not in table.columns:
        return parse_all(smiles, isomeric, isolation)
    errors = [error if isinstance(error, str) and error else None for error in table[READ_ERROR]]
    readable = [position for position, error in enumerate(errors) if error is None]
    parsed = dict(zip(readable, parse_all([smiles[position] for position in readable], isomeric, isolation)))
    return [parsed[position] if error is None else ParsedSmiles(error=error) for position, error in enumerate(errors)]


def check_validity(parsed: list[ParsedSmiles], task: TaskSpec) -> list[str]:
    """An error when no SMILES is valid, a warning (returned) when most are not: the wrong column, most likely."""
    attempted = [result for result in parsed if result.error != REASON_EMPTY]
    failed = [result.error for result in attempted if result.error is not None]
    reasons = "; ".join(dict.fromkeys(failed))  # distinct, in order
    first = reasons if len(reasons) <= 200 else reasons[:200] + "..."
    if task.smiles_column is None:
        where, question = "the SD file's records", "is the file an SD file?"
    else:
        where, question = f"column '{task.smiles_column}'", f"is tasks.{task.name}.smiles_column the column that holds the SMILES?"
    if attempted and len(failed) == len(attempted):
        raise InputError(
            f"task '{task.name}': none of the {len(attempted)} molecules in {where} is valid (first reasons: {first}); {question}"
        )
    if len(failed) * 2 > len(attempted):
        warning = f"{len(failed)} of the {len(attempted)} molecules in {where} are invalid (first reasons: {first}); {question}"
        logger.warning("task '%s': %s", task.name, warning)
        return [warning]
    return []


def featurize(table: pd.DataFrame, task: TaskSpec, isomeric: bool = True, isolation: Isolation = Isolation()) -> Featurized:
    """Turn a task table (`mol_id, row, smiles, <labels>`) into unique molecules, invalid rows, duplicates and QC.

    QC counts add up: valid + invalid + empty = rows, and
    molecules = valid - missing_label - duplicate_rows_merged - dropped_conflicting. SMILES are parsed in
    isolated worker processes (`isolation`).
    """
    check_columns(table, task)
    table = numeric_labels(table.reset_index(drop=True), task)
    smiles = smiles_text(table["smiles"])
    parsed = parse_table(table, smiles, isomeric, isolation)
    warnings = check_validity(parsed, task)
    screening = screen_rows(table, task, smiles, parsed)

    kept = screening.kept
    molecules = table.loc[kept, ["mol_id", *task.label_columns]]
    molecules.insert(1, "smiles", [parsed[position].canonical for position in kept])
    molecules.insert(2, "scaffold", [parsed[position].scaffold for position in kept])
    merging = merge_duplicates(table, task, smiles, molecules)

    invalid = invalid_frame(screening.rejected + merging.rejected)
    qc = {
        "rows": len(table),
        "valid": len(table) - screening.empty - screening.unparsable,
        "invalid": screening.unparsable,
        "empty": screening.empty,
        "missing_label": screening.missing_label,
        "duplicate_rows_merged": sum(len(group.positions) - 1 for group in merging.groups),
        "duplicate_groups": len(merging.groups),
        "conflicting_label_groups": sum(group.conflicting for group in merging.groups),
        "dropped_conflicting": merging.dropped_conflicting,
        "molecules": len(merging.molecules),
        "crashed": sum(1 for result in parsed if result.error is not None and result.error.startswith("RDKit crashed")),
        "warnings": warnings,
        "invalid_examples": [
            {"row": int(record.row), "smiles": record.smiles[:EXAMPLE_CHARACTERS], "reason": record.reason}
            for record in invalid.head(INVALID_EXAMPLES).itertuples()
        ],
    }
    counts = ", ".join(f"{name} {count}" for name, count in qc.items() if name not in ("invalid_examples", "warnings"))
    logger.info("task '%s': %s", task.name, counts)
    duplicates = duplicates_frame(table, molecules["smiles"], merging.groups)
    return Featurized(molecules=merging.molecules, invalid=invalid, duplicates=duplicates, qc=qc)
