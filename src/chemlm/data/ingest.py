"""Getting a task's table: download once with a checksum, then read and check its columns and labels."""

from __future__ import annotations

import gzip
import hashlib
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.data.sdf import READ_ERROR, is_sd_file, read_sd_table
from chemlm.io import InputError, atomic_path, is_gzip, read_csv
from chemlm.isolation import Isolation
from chemlm.tasks import TaskSpec, TaskType

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60
TAB_SUFFIXES = (".tsv", ".tab")
# a source's molecule ids and SMILES while the table is read, whatever its own columns are called
ID_COLUMN, SMILES_COLUMN = "__mol_id", "__smiles"
# How spreadsheets and other tools write a missing label; compared case-insensitively.
MISSING_LABEL_TEXTS = frozenset({"", "na", "nan", "n/a", "null", "none"})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination: Path, expected_sha256: str, task_name: str) -> None:
    """Fetch `url` to `destination`, keeping it only if its sha256 is the expected one."""
    logger.info("downloading %s", url)
    with atomic_path(destination) as temporary:
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(temporary, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise InputError(
                f"task '{task_name}': could not download {url} ({reason}); download it elsewhere and set "
                f"tasks.{task_name}.source to the local path"
            ) from None
        actual = sha256_of(temporary)
        if actual != expected_sha256:
            raise InputError(
                f"task '{task_name}': {url} has sha256 {actual}, the config expects {expected_sha256} "
                f"(tasks.{task_name}.sha256)"
            )
    logger.info("saved %s (sha256 %s)", destination, expected_sha256)


def location(path: Path, row: int) -> str:
    """Where a data row is, as a user finds it: the line of a table (header = line 1) or the record of an SD file."""
    return f"{path}, SD record {row + 1}" if is_sd_file(path) else f"{path}, line {row + 2}"


def _numeric_labels(values: pd.Series, column: str, path: Path) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{location(path, row)}: label column '{column}' has non-numeric value {values.iloc[row]!r}"
        )
    return numeric.astype(float)


def _check_binary(labels: pd.Series, column: str, path: Path) -> None:
    present = labels.dropna()
    not_binary = ~present.isin([0.0, 1.0])
    if not_binary.any():
        row = int(present.index[np.flatnonzero(not_binary.to_numpy())[0]])
        raise InputError(f"{location(path, row)}: label column '{column}' has {present[row]:g}; expected 0 or 1")


def _check_two_classes(labels: pd.Series, column: str, path: Path) -> None:
    classes = labels.dropna().unique()
    if len(classes) < 2:
        found = ", ".join(f"{value:g}" if isinstance(value, float) else str(value) for value in classes) or "none"
        raise InputError(f"{path}: label column '{column}' has only one class ({found}); a classifier needs two")


def delimiter_of(path: Path) -> str:
    """Tab for .tsv and .tab files; for others the comma, unless the header holds none but a semicolon or a tab."""
    suffixes = [suffix.lower() for suffix in path.suffixes if suffix.lower() != ".gz"]
    if suffixes and suffixes[-1] in TAB_SUFFIXES:
        return "\t"
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline()
    except (OSError, EOFError):
        return ","  # read_csv says what is wrong with the file
    if "," not in header:
        for delimiter, name in ((";", "semicolon"), ("\t", "tab")):
            if delimiter in header:
                logger.info("%s: its header has no comma but a %s: read as %s-separated", path, name, name)
                return delimiter
    return ","


def read_source(path: Path, task: TaskSpec, isolation: Isolation, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The source's rows as text, with the SMILES in SMILES_COLUMN (a table's SMILES column, or an SD file's
    connection tables, with `read_error` for the records RDKit cannot read), `columns` (by default the task's labels
    and id column) and the ids, if asked for, in ID_COLUMN."""
    wanted = [*task.label_columns, *([task.id_column] if task.id_column else [])] if columns is None else list(columns)
    id_column = task.id_column if task.id_column in wanted else None
    if is_sd_file(path):
        table = read_sd_table(path, wanted, id_column, isolation)
        return table.rename(columns={"mol_id": ID_COLUMN, "smiles": SMILES_COLUMN})
    table = read_csv(path, sep=delimiter_of(path), dtype=str, keep_default_na=False, na_values=[""])
    if table.empty:
        raise InputError(f"{path}: no data rows (header only)")
    if task.smiles_column is None:
        raise InputError(f"{path}: tasks.{task.name}.smiles_column is needed for a table (only SD files go without)")
    for column in [task.smiles_column, *wanted]:
        if column not in table.columns:
            raise InputError(
                f"{path}: no column '{column}' (task '{task.name}'); columns are: {', '.join(table.columns)}"
            )
    table[SMILES_COLUMN] = table[task.smiles_column]
    if id_column:
        table[ID_COLUMN] = table[id_column]
    return table


def read_task_table(path: str | Path, task: TaskSpec, isolation: Isolation = Isolation()) -> pd.DataFrame:
    """The task's rows as `mol_id, row, smiles, <labels>` (docs/design.md, item 2), checked; an SD file's rows also
    have `read_error`."""
    path = Path(path)
    table = read_source(path, task, isolation)
    out = pd.DataFrame(
        {
            "mol_id": table[ID_COLUMN].fillna("").str.strip() if ID_COLUMN in table else table.index.astype(str),
            "row": np.arange(len(table)),
            "smiles": table[SMILES_COLUMN].fillna("").str.strip(),
        }
    )
    repeated = out["mol_id"].duplicated()
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise InputError(f"{location(path, row)}: id column '{task.id_column}' repeats {out['mol_id'][row]!r}")
    for column in task.label_columns:
        raw = table[column].str.strip()
        raw = raw.where(~raw.str.lower().isin(MISSING_LABEL_TEXTS))
        if task.type is TaskType.MULTICLASS:
            out[column] = raw
            _check_two_classes(raw, column, path)
            continue
        labels = _numeric_labels(raw, column, path)
        if task.type in (TaskType.BINARY, TaskType.MULTILABEL):
            _check_binary(labels, column, path)
        if task.type is TaskType.BINARY:
            _check_two_classes(labels, column, path)
        out[column] = labels
    if READ_ERROR in table:
        out[READ_ERROR] = table[READ_ERROR].fillna("")
    logger.info("%s: %d rows, task '%s' (%s)", path, len(out), task.name, task.type.value)
    return out
