"""Getting a task's table: download once with a checksum, then read and check its columns and labels."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from chemlm.io import InputError, atomic_path, read_csv
from chemlm.tasks import TaskSpec, TaskType

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60
# How spreadsheets and other tools write a missing label; compared case-insensitively.
MISSING_LABEL_TEXTS = frozenset({"", "na", "nan", "n/a", "null", "none"})


def is_url(source: str) -> bool:
    return urlparse(source).scheme in {"http", "https", "ftp"}


def url_filename(url: str) -> str:
    return Path(urlparse(url).path).name or "download"


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


def _numeric_labels(values: pd.Series, column: str, path: Path) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}, line {row + 2}: label column '{column}' has non-numeric value {values.iloc[row]!r}"
        )
    return numeric.astype(float)


def _check_binary(labels: pd.Series, column: str, path: Path) -> None:
    present = labels.dropna()
    not_binary = ~present.isin([0.0, 1.0])
    if not_binary.any():
        row = int(present.index[np.flatnonzero(not_binary.to_numpy())[0]])
        raise InputError(f"{path}, line {row + 2}: label column '{column}' has {present[row]:g}; expected 0 or 1")


def _check_two_classes(labels: pd.Series, column: str, path: Path) -> None:
    classes = labels.dropna().unique()
    if len(classes) < 2:
        found = ", ".join(f"{value:g}" if isinstance(value, float) else str(value) for value in classes) or "none"
        raise InputError(f"{path}: label column '{column}' has only one class ({found}); a classifier needs two")


def read_task_table(path: str | Path, task: TaskSpec) -> pd.DataFrame:
    """The task's rows as `mol_id, row, smiles, <labels>` (docs/design.md, item 2), checked."""
    path = Path(path)
    table = read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if table.empty:
        raise InputError(f"{path}: no data rows (header only)")
    wanted = [task.smiles_column, *task.label_columns] + ([task.id_column] if task.id_column else [])
    for column in wanted:
        if column not in table.columns:
            raise InputError(
                f"{path}: no column '{column}' (task '{task.name}'); columns are: {', '.join(table.columns)}"
            )
    out = pd.DataFrame(
        {
            "mol_id": table[task.id_column].str.strip() if task.id_column else table.index.astype(str),
            "row": np.arange(len(table)),
            "smiles": table[task.smiles_column].fillna("").str.strip(),
        }
    )
    if task.id_column:
        repeated = out["mol_id"].duplicated()
        if repeated.any():
            row = int(np.flatnonzero(repeated.to_numpy())[0])
            raise InputError(f"{path}, line {row + 2}: id column '{task.id_column}' repeats {out['mol_id'][row]!r}")
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
    logger.info("%s: %d rows, task '%s' (%s)", path, len(out), task.name, task.type.value)
    return out
