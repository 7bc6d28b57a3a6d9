"""Libraries of molecules to score, as chemists keep them: a CSV (a SMILES column, an optional id column) or a .smi
file ("SMILES [id]" per line, no header), plain or gzipped, of any size.

A library is read in chunks and never held whole, and is cut into shards of rows (config `predict.shard_size`) that
separate jobs prepare and score: chemlm.io.count_rows says how many rows there are when the workflow is planned, and a
shard's rows keep their numbers in the whole file. Each row is kept, in input order: its id (the id column, a .smi
line's second field, else the 0-based row), its SMILES as given, the canonical SMILES and whether RDKit reads it
(else why not). Canonicalisation and ECFP4 fingerprints need RDKit (run in crash-isolated workers); without RDKit,
`prepare_chunk` keeps the SMILES as given and says so.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.io import InputError, atomic_path, is_gzip, is_smi_file
from chemlm.isolation import Crash, Isolation, map_isolated
from chemlm.scoring import LIBRARY_CHUNK_ROWS, RANDOM_SMILES
from chemlm.variants import SEED

logger = logging.getLogger(__name__)

CHUNK_ROWS = LIBRARY_CHUNK_ROWS
COLUMNS = ["row", "id", "input_smiles", "smiles", "valid", "reason"]
NOT_CANONICALISED = "RDKit is not installed here: scored as given, not canonicalised"


def read_chunks(
    path: str | Path, smiles_column: str = "smiles", id_column: str | None = None, chunk_rows: int | None = None,
    start: int = 0, stop: int | None = None,
) -> Iterator[pd.DataFrame]:
    """`row`, `id`, `input_smiles` of the rows [start, stop) (every row by default), `chunk_rows` (default
    CHUNK_ROWS) at a time; `row` counts from the file's first row."""
    for chunk in _all_chunks(Path(path), smiles_column, id_column, chunk_rows or CHUNK_ROWS):
        rows = chunk["row"].to_numpy()
        if stop is not None and rows[0] >= stop:
            return
        if rows[-1] >= start:
            yield chunk[(rows >= start) & ((rows < stop) if stop is not None else True)].reset_index(drop=True)


def _all_chunks(path: Path, smiles_column: str, id_column: str | None, chunk_rows: int) -> Iterator[pd.DataFrame]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    if is_smi_file(path):
        yield from _smi_chunks(path, chunk_rows)
        return
    from chemlm.data.ingest import delimiter_of

    try:
        reader = pd.read_csv(path, sep=delimiter_of(path), dtype=str, keep_default_na=False, chunksize=chunk_rows,
                             compression="gzip" if is_gzip(path) else None, encoding="utf-8-sig")
        start = 0
        for chunk in reader:
            chunk.columns = [str(column).strip() for column in chunk.columns]
            for column in [smiles_column, *([id_column] if id_column else [])]:
                if column not in chunk.columns:
                    raise InputError(f"{path}: no column '{column}'; columns are: {', '.join(chunk.columns)}")
            rows = np.arange(start, start + len(chunk))
            ids = chunk[id_column].str.strip() if id_column else pd.Series(rows.astype(str))
            yield pd.DataFrame({"row": rows, "id": ids.to_numpy(), "input_smiles": chunk[smiles_column].fillna("").str.strip().to_numpy()})
            start += len(chunk)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise InputError(f"{path}: not a readable table ({type(error).__name__})") from None


def _smi_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    opener = gzip.open if is_gzip(path) else open
    rows, ids, smiles = [], [], []
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                fields = line.split(maxsplit=1)
                rows.append(number)
                smiles.append(fields[0] if fields else "")
                ids.append(fields[1].strip() if len(fields) > 1 else str(number))
                if len(rows) == chunk_rows:
                    yield pd.DataFrame({"row": rows, "id": ids, "input_smiles": smiles})
                    rows, ids, smiles = [], [], []
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as error:
        raise InputError(f"{path}: not a readable SMILES file ({type(error).__name__})") from None
    if rows:
        yield pd.DataFrame({"row": rows, "id": ids, "input_smiles": smiles})


def rdkit_available() -> bool:
    try:
        import rdkit  # noqa: F401
    except ImportError:
        return False
    return True


def prepare_chunk(chunk: pd.DataFrame, isomeric: bool, isolation: Isolation = Isolation()) -> pd.DataFrame:
    """The chunk with `smiles` (canonical), `valid` and `reason`; without RDKit the SMILES as given, each row saying
    it was not canonicalised (an empty SMILES is invalid either way)."""
    chunk = chunk.copy()
    if not rdkit_available():
        empty = chunk["input_smiles"] == ""
        chunk["smiles"] = chunk["input_smiles"]
        chunk["valid"] = ~empty
        chunk["reason"] = np.where(empty, "empty SMILES", NOT_CANONICALISED)
        return chunk[COLUMNS]
    from chemlm.featurize import parse_all

    parsed = parse_all(chunk["input_smiles"].tolist(), isomeric, isolation)
    chunk["smiles"] = [result.canonical or "" for result in parsed]
    chunk["valid"] = [result.error is None for result in parsed]
    chunk["reason"] = [result.error or "" for result in parsed]
    return chunk[COLUMNS]


def add_random_smiles(chunk: pd.DataFrame, draws: int, isomeric: bool, isolation: Isolation = Isolation(), seed: int = SEED) -> pd.DataFrame:
    """The prepared chunk with RANDOM_SMILES: each valid molecule's `draws` random SMILES drawn with `seed`
    (chemlm.augment), space-separated, from which test-time augmentation makes a model's SMILES variants; empty for
    an invalid row or one that RDKit crashed on."""
    from chemlm.augment import random_smiles_chunk

    chunk = chunk.copy()
    valid = chunk["valid"].to_numpy(dtype=bool)
    drawn = map_isolated(partial(random_smiles_chunk, draws=draws, isomeric=isomeric, seed=seed), chunk.loc[valid, "smiles"].tolist(), isolation)
    chunk[RANDOM_SMILES] = ""
    chunk.loc[valid, RANDOM_SMILES] = ["" if isinstance(result, Crash) else " ".join(result) for result in drawn]
    return chunk


def merge_counts(shard_counts: list[dict]) -> dict:
    """A library's counts (`write_library`'s) summed over its shards, with the number of shards."""
    return {**{key: sum(counts[key] for counts in shard_counts) for key in ("rows", "valid", "invalid")}, "shards": len(shard_counts)}


def write_library(
    source: str | Path, smiles_column: str, id_column: str | None, isomeric: bool, molecules_csv: str | Path,
    fingerprints_npy: str | Path, isolation: Isolation = Isolation(), chunk_rows: int | None = None, random_smiles: int = 0,
    rows: tuple[int, int | None] = (0, None),
) -> dict:
    """A library's rows [start, stop) = `rows` (every row by default; a shard) as molecules.csv.gz (COLUMNS, and
    RANDOM_SMILES when `random_smiles` draws are asked for) and their packed ECFP4 bits (a .npy of n x 256 uint8;
    zeros for invalid rows), chunk by chunk. Returns the counts."""
    from chemlm.fingerprints import ECFP4_BITS, ecfp4

    chunk_rows = chunk_rows or CHUNK_ROWS
    counts = {"rows": 0, "valid": 0, "invalid": 0}
    with atomic_path(molecules_csv) as table_path, tempfile.TemporaryFile(dir=Path(fingerprints_npy).parent) as bits_file:
        with gzip.open(table_path, "wt", encoding="utf-8", newline="") as table_stream:
            for position, chunk in enumerate(read_chunks(source, smiles_column, id_column, chunk_rows, *rows)):
                prepared = prepare_chunk(chunk, isomeric, isolation)
                if random_smiles:
                    prepared = add_random_smiles(prepared, random_smiles, isomeric, isolation)
                prepared.to_csv(table_stream, index=False, header=position == 0)
                bits = np.zeros((len(prepared), ECFP4_BITS), dtype=np.uint8)
                valid = prepared["valid"].to_numpy()
                if valid.any():
                    bits[valid], _ = ecfp4(prepared.loc[valid, "smiles"].tolist(), prepared.loc[valid, "id"].tolist(), isolation)
                bits_file.write(np.packbits(bits, axis=1).tobytes())
                counts["rows"] += len(prepared)
                counts["valid"] += int(valid.sum())
                logger.info("%s: %d rows read, %d valid", source, counts["rows"], counts["valid"])
        if counts["rows"] == 0:
            raise InputError(f"{source}: no rows in it" if rows == (0, None) else
                             f"{source}: no rows from row {rows[0]} on; has it changed since the workflow was planned?")
        counts["invalid"] = counts["rows"] - counts["valid"]
        bits_file.seek(0)
        with atomic_path(fingerprints_npy) as temporary:
            packed = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=(counts["rows"], ECFP4_BITS // 8))
            for start in range(0, counts["rows"], chunk_rows):
                block = np.frombuffer(bits_file.read(min(chunk_rows, counts["rows"] - start) * (ECFP4_BITS // 8)), dtype=np.uint8)
                packed[start : start + len(block) // (ECFP4_BITS // 8)] = block.reshape(-1, ECFP4_BITS // 8)
            packed.flush()
            del packed
    return counts
