"""Writing scores of a library: one row per input row, in input order, chunk by chunk, for any scorer (an ensemble
of fine-tuned models, chemlm.predict, or of fingerprint baselines, chemlm.baselines). numpy and pandas only.

The output (docs/design.md, "Predictions"): `row`, `id`, `input_smiles`, `smiles`, `valid`, `reason`, then per label
(multi-class: per class) `mean:<name>` and `sd:<name>` over the ensemble's models (probabilities, or values in the
label's units), `calibrated:<name>` for binary and multi-label tasks, and, when the training fold is known,
`max_similarity` and `neighbour_id`. Invalid rows keep their place with empty scores. Memory does not grow with the
library: a chunk is scored, written and dropped.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from chemlm.calibration import CALIBRATED_TYPES
from chemlm.io import InputError, atomic_path
from chemlm.tasks import TaskType

logger = logging.getLogger(__name__)

LIBRARY_CHUNK_ROWS = 10_000  # rows scored at a time: memory stays flat whatever the library's size
# A prepared library's column of each molecule's seeded random SMILES, space-separated (chemlm.library writes it
# for test-time augmentation); scoring reads it, the scores file leaves it out.
RANDOM_SMILES = "random_smiles"
# Models that are the same (a deterministic baseline's seeds) differ by the rounding of float sums and float32 matrix
# products: up to about 1e-7 of a score's size, or 1e-15 of a score near 0. A real disagreement of seeds is orders of
# magnitude larger. An sd below SD_RESOLUTION of the scores' size (plus SD_FLOOR) is 0.
SD_RESOLUTION = 1e-6
SD_FLOOR = 1e-12
MERGE_BLOCK = 1 << 20  # bytes copied at a time when shards are merged


@dataclass(frozen=True)
class Scores:
    """One chunk's scores: (n, names) arrays; `calibrated` is None where the task type is not calibrated."""

    mean: np.ndarray
    sd: np.ndarray
    calibrated: np.ndarray | None


class Scorer(Protocol):
    """Scores the valid rows of a library chunk (with their packed fingerprints)."""

    names: list[str]
    task_type: TaskType

    def score(self, rows: pd.DataFrame, packed_bits: np.ndarray | None) -> Scores: ...


def ensemble_sd(stacked: np.ndarray) -> np.ndarray:
    """The sample sd over the models (axis 0) of their scores: NaN for a single model, 0 where it is below the scores'
    resolution (SD_RESOLUTION of their size, and SD_FLOOR)."""
    if len(stacked) < 2:
        return np.full(stacked.shape[1:], np.nan)
    sd = stacked.std(axis=0, ddof=1)
    return np.where(sd < SD_RESOLUTION * np.abs(stacked).max(axis=0) + SD_FLOOR, 0.0, sd)


def ensemble_scores(per_model: list[np.ndarray], calibrated: list[np.ndarray] | None) -> Scores:
    """Mean and sample sd over the models (ensemble_sd), and the mean calibrated probability."""
    stacked = np.stack(per_model)
    return Scores(stacked.mean(axis=0), ensemble_sd(stacked), np.stack(calibrated).mean(axis=0) if calibrated is not None else None)


# ---------------------------------------------------------------------------------------------------
# Writing scores


def score_columns(scorer: Scorer) -> list[str]:
    columns = []
    for name in scorer.names:
        columns += [f"mean:{name}", f"sd:{name}"]
        if scorer.task_type in CALIBRATED_TYPES:
            columns.append(f"calibrated:{name}")
    return columns


def scored_chunk(scorer: Scorer, chunk: pd.DataFrame, packed_bits: np.ndarray | None) -> pd.DataFrame:
    """The chunk with its score columns (and without its random SMILES); invalid rows keep their place with empty
    scores."""
    rows = chunk.reset_index(drop=True)
    out = rows.drop(columns=[RANDOM_SMILES], errors="ignore")
    valid = out["valid"].to_numpy(dtype=bool)
    values = {column: np.full(len(out), np.nan) for column in score_columns(scorer)}
    if valid.any():
        scores = scorer.score(rows[valid], packed_bits[valid] if packed_bits is not None else None)
        for position, name in enumerate(scorer.names):
            values[f"mean:{name}"][valid] = scores.mean[:, position]
            values[f"sd:{name}"][valid] = scores.sd[:, position]
            if scores.calibrated is not None:
                values[f"calibrated:{name}"][valid] = scores.calibrated[:, position]
    for column, column_values in values.items():
        out[column] = column_values
    return out


def write_scores(
    scorer: Scorer,
    chunks: Iterator[pd.DataFrame],
    out_csv: str | Path,
    packed_bits: np.ndarray | None = None,
    similarity: Iterator[pd.DataFrame] | None = None,
) -> int:
    """Score every chunk and write the rows in input order (gzipped when `out_csv` ends in .gz); returns the rows.

    `packed_bits` (the library's fingerprints, memory-mapped) are handed to the scorer row for row; `similarity`
    yields chunks of `max_similarity` and `neighbour_id` in the same order as `chunks`.
    """
    started, rows = time.perf_counter(), 0
    with atomic_path(out_csv) as temporary:
        opener = gzip.open if str(out_csv).endswith(".gz") else open
        with opener(temporary, "wt", encoding="utf-8", newline="") as stream:
            domains = RowStream(similarity) if similarity is not None else None
            for position, chunk in enumerate(chunks):
                bits = packed_bits[rows : rows + len(chunk)] if packed_bits is not None else None
                out = scored_chunk(scorer, chunk, bits)
                if domains is not None:
                    domain = domains.take(len(out))
                    if len(domain) != len(out) or not (domain["row"].to_numpy() == out["row"].to_numpy()).all():
                        raise InputError(f"{out_csv}: the similarity file's rows do not match the library's; rerun the similarity")
                    out["max_similarity"], out["neighbour_id"] = domain["max_similarity"].to_numpy(), domain["neighbour_id"].to_numpy()
                out.to_csv(stream, index=False, header=position == 0)
                rows += len(out)
                logger.info("%d rows scored (%.0f rows/s)", rows, rows / max(time.perf_counter() - started, 1e-9))
    return rows


def merge_shards(shard_csvs: list[str | Path], shard_size: int, out_csv: str | Path) -> None:
    """The scores of a library's shards, in shard order, as one file: what scoring it whole writes, byte for byte
    once decompressed. Shard k must start at row k * `shard_size` and every shard have the same columns."""
    with atomic_path(out_csv) as temporary, gzip.open(temporary, "wb") as out:
        header = None
        for shard, path in enumerate(shard_csvs):
            with gzip.open(path, "rb") as stream:
                shard_header, first = stream.readline(), stream.readline()
                if header is not None and shard_header != header:
                    raise InputError(f"{path}: its columns differ from the first shard's; rerun its scoring")
                first_row = first.split(b",", 1)[0].decode()
                if first and first_row != str(shard * shard_size):
                    raise InputError(f"{path}: starts at row {first_row}, not {shard * shard_size}; rerun its scoring")
                if header is None:
                    header = shard_header
                    out.write(header)
                out.write(first)
                shutil.copyfileobj(stream, out, MERGE_BLOCK)
    logger.info("%d shards merged into %s", len(shard_csvs), out_csv)


class RowStream:
    """Rows of a stream of tables, taken in any numbers: lines up a file read in chunks of one size with another."""

    def __init__(self, tables: Iterator[pd.DataFrame]):
        self.tables, self.buffer = tables, pd.DataFrame()

    def take(self, rows: int) -> pd.DataFrame:
        while len(self.buffer) < rows:
            table = next(self.tables, None)
            if table is None:
                break
            self.buffer = pd.concat([self.buffer, table], ignore_index=True) if len(self.buffer) else table.reset_index(drop=True)
        taken, self.buffer = self.buffer.iloc[:rows].reset_index(drop=True), self.buffer.iloc[rows:].reset_index(drop=True)
        return taken


def similarity_chunks(similarity_csv: str | Path, chunk_rows: int = 10_000) -> Iterator[pd.DataFrame]:
    """The similarity file (chemlm.similarity), in chunks."""
    yield from pd.read_csv(similarity_csv, dtype={"neighbour_id": str}, keep_default_na=False, chunksize=chunk_rows)


def rank_column(columns: list[str]) -> str:
    """What ranks a library: the first calibrated probability, else the first ensemble mean."""
    calibrated = [column for column in columns if column.startswith("calibrated:")]
    return calibrated[0] if calibrated else next(column for column in columns if column.startswith("mean:"))


def top_predictions(predictions_csv: str | Path, top: int, chunk_rows: int = 100_000) -> pd.DataFrame:
    """The `top` valid rows with the highest rank score, read chunk by chunk (a library of any size)."""
    best = None
    for chunk in pd.read_csv(predictions_csv, dtype={"id": str, "smiles": str}, keep_default_na=False, na_values=[""], chunksize=chunk_rows):
        rank = rank_column(list(chunk.columns))
        chunk = chunk[chunk["valid"].astype(str) == "True"]
        best = pd.concat([best, chunk]) if best is not None else chunk
        best = best.sort_values(rank, ascending=False, kind="stable").head(top)
    return best.reset_index(drop=True) if best is not None else pd.DataFrame()


# Scores closer than this (relative to their size) are a tie: the model does not tell the molecules apart.
TIE_RESOLUTION = 1e-4


def ranking_ties(top: pd.DataFrame) -> str | None:
    """What a ranking's ties mean, where the top rows' scores tie: all of them (the model barely tells these
    molecules apart) or some (their order among themselves is arbitrary); None where no two tie."""
    if len(top) < 2:
        return None
    scores = top[rank_column(list(top.columns))].to_numpy(dtype=float)
    resolution = TIE_RESOLUTION * max(1.0, float(np.abs(scores).max()))
    if scores.max() - scores.min() <= resolution:
        return (f"the top {len(top)} scores lie within {scores.max() - scores.min():.1g} of each other ({scores.min():.5f} to "
                f"{scores.max():.5f}): the model barely tells these molecules apart, so their order means little")
    close = np.diff(np.sort(scores)) <= resolution  # neighbours in score order
    in_tie = np.zeros(len(scores), dtype=bool)
    in_tie[:-1] |= close
    in_tie[1:] |= close
    tied = int(in_tie.sum())
    if not tied:
        return None
    return f"{tied} of the top {len(top)} tie with another within {resolution:.1g}: their order among themselves is arbitrary"


def library_chunks(molecules_csv: str | Path, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The rows write_library wrote, chunk by chunk, with `valid` as booleans."""
    for chunk in pd.read_csv(molecules_csv, dtype={"id": str, "input_smiles": str, "smiles": str, "reason": str, RANDOM_SMILES: str},
                             keep_default_na=False, chunksize=chunk_rows or LIBRARY_CHUNK_ROWS):
        chunk["valid"] = chunk["valid"].astype(str) == "True"
        yield chunk
