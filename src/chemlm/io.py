"""File helpers shared by all stages: reading user tables and writing outputs atomically."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

GZIP_MAGIC = b"\x1f\x8b"


class InputError(ValueError):
    """Bad user input; the message is one line naming the file, row or key."""


def is_url(source: str) -> bool:
    return urlparse(source).scheme in {"http", "https", "ftp"}


def url_filename(url: str) -> str:
    """The file name a downloaded source is kept under."""
    return Path(urlparse(url).path).name or "download"


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


SMI_SUFFIXES = (".smi", ".smiles")


def is_smi_file(path: str | Path) -> bool:
    suffixes = [suffix.lower() for suffix in Path(path).suffixes if suffix.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in SMI_SUFFIXES


def count_rows(path: str | Path) -> int:
    """The rows chemlm.library.read_chunks numbers: every line of a .smi file, the non-blank lines after a CSV's header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            if is_smi_file(path):
                return sum(1 for _ in handle)
            return max(sum(1 for line in handle if line.strip()) - 1, 0)
    except (EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"{path}: not a readable file ({type(error).__name__})") from None


def read_csv(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a plain or gzipped CSV (detected by content, not name), tolerating a BOM and CRLF."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    compression = "gzip" if is_gzip(path) else None
    try:
        table = pd.read_csv(path, compression=compression, encoding="utf-8-sig", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable CSV ({first_line})") from None
    table.columns = [str(column).strip() for column in table.columns]
    return table


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it onto `path` only if the block succeeds.

    Works for files and directories, so a killed or failing step never leaves a half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        yield temporary
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(temporary, path)
    finally:
        shutil.rmtree(temporary.parent, ignore_errors=True)


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)


def write_json(data: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())
