"""SD files (.sdf, .sdf.gz) as task tables: molecules from their connection tables, labels and ids from SD properties.

The file is streamed record by record (records end with a `$$$$` line), so its size does not matter. Properties and
the title line are read as text; each connection table is read by RDKit in worker processes (chemlm.isolation), so a
record that crashes RDKit costs that record. A record RDKit cannot read keeps its row, with the reason in
`read_error`, which featurization reports as an invalid row (docs/design.md, item 2).
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from chemlm.io import InputError, is_gzip
from chemlm.isolation import Crash, Isolation, map_isolated

logger = logging.getLogger(__name__)

SD_SUFFIXES = (".sdf", ".sd")
RECORD_END = "$$$$"
PROPERTY_HEADER = re.compile(r"^>.*<([^>]+)>")
RECORDS_PER_BATCH = 20_000  # records held in memory at once
READ_ERROR = "read_error"


def is_sd_file(path: str | Path) -> bool:
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in SD_SUFFIXES


@dataclass
class SDRecord:
    """One record as text: its title line, connection table and properties."""

    number: int  # 0-based position in the file
    title: str
    molblock: str
    properties: dict[str, str] = field(default_factory=dict)


def split_record(number: int, lines: list[str]) -> SDRecord:
    """The title, the connection table (up to `M  END`) and the `> <NAME>` properties of one record's lines."""
    end = next((index for index, line in enumerate(lines) if line.strip() == "M  END"), len(lines) - 1)
    record = SDRecord(number, lines[0].strip() if lines else "", "\n".join(lines[: end + 1]) + "\n")
    name, values = None, []
    for line in lines[end + 1 :]:
        header = PROPERTY_HEADER.match(line)
        if header:
            name, values = header.group(1).strip(), []
        elif name is not None and line.strip() == "":
            record.properties[name] = "\n".join(values).strip()
            name = None
        elif name is not None:
            values.append(line)
    if name is not None:
        record.properties[name] = "\n".join(values).strip()
    return record


def sd_records(path: Path) -> Iterator[SDRecord]:
    """Every record of a plain or gzipped SD file, in order, read one at a time."""
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            lines: list[str] = []
            number = 0
            for line in handle:
                line = line.rstrip("\r\n")
                if line.strip() == RECORD_END:
                    yield split_record(number, lines)
                    number, lines = number + 1, []
                else:
                    lines.append(line)
            if any(line.strip() for line in lines):  # a last record without its $$$$ line
                yield split_record(number, lines)
    except (EOFError, gzip.BadGzipFile, OSError) as error:
        raise InputError(f"{path}: not a readable SD file ({type(error).__name__}: {error})") from None


def smiles_chunk(molblocks: list[str]) -> list[tuple[str, str | None]]:
    """(isomeric SMILES, None) of each connection table RDKit reads, ("", why) of each it cannot."""
    from rdkit import Chem, rdBase

    from chemlm.rdkit_messages import rdkit_error_text

    results: list[tuple[str, str | None]] = []
    with rdBase.BlockLogs():
        for block in molblocks:
            with rdBase.CaptureErrorLog() as capture:
                molecule = Chem.MolFromMolBlock(block)
            if molecule is None:
                results.append(("", rdkit_error_text(capture.messages)))
            else:
                results.append((Chem.MolToSmiles(molecule), None))
    return results


def batches(records: Iterator[SDRecord], size: int) -> Iterator[list[SDRecord]]:
    batch: list[SDRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_sd_table(path: str | Path, wanted: list[str], id_property: str | None, isolation: Isolation = Isolation()) -> pd.DataFrame:
    """The records as a table of strings: `mol_id` (the `id_property`; else the title lines when every record has a
    distinct one; else the record number), `smiles` (from the connection table; empty when unreadable),
    `read_error` (why not, with the record number) and the `wanted` properties (empty where a record lacks one)."""
    path = Path(path)
    rows = []
    seen: set[str] = set()
    for batch in batches(sd_records(path), RECORDS_PER_BATCH):
        seen.update(name for record in batch for name in record.properties)
        read = map_isolated(smiles_chunk, [record.molblock for record in batch], isolation)
        for record, result in zip(batch, read):
            smiles, error = ("", result.reason) if isinstance(result, Crash) else result
            rows.append({
                "title": record.title,
                "smiles": smiles,
                READ_ERROR: f"SD record {record.number + 1}: {error}" if error else "",
                **{name: record.properties.get(name, "") for name in wanted},
            })
    if not rows:
        raise InputError(f"{path}: no SD records in it")
    for name in wanted:
        if name not in seen:
            raise InputError(f"{path}: no record has the SD property '{name}'; properties are: {', '.join(sorted(seen)) or 'none'}")
    table = pd.DataFrame(rows)
    if id_property:
        table["mol_id"] = table[id_property]
    elif (table["title"] != "").all() and table["title"].is_unique:
        table["mol_id"] = table["title"]
    else:
        logger.info("%s: the title lines are empty or repeat: molecules are named by record number", path)
        table["mol_id"] = [str(number) for number in range(len(table))]
    unreadable = int((table[READ_ERROR] != "").sum())
    logger.info("%s: %d SD records, %d that RDKit cannot read", path, len(table), unreadable)
    return table.drop(columns="title")
