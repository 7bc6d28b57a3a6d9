"""Inputs as chemists have them: a molecule that crashes RDKit costs one row, TSV and semicolon CSVs, .smi corpora,
SD files with properties and broken records, and clear errors when the SMILES column is wrong."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from chemlm.config import CorpusSettings
from chemlm.corpus import build_corpus, prepare_corpus
from chemlm.data.ingest import read_task_table
from chemlm.descriptors import compute_descriptors
from chemlm.featurize import featurize
from chemlm.fingerprints import ecfp4
from chemlm.io import InputError
from chemlm.isolation import Crash, Isolation, map_isolated
from chemlm.tasks import TaskSpec, TaskType
from helpers import DEMO_HIV, REPO

# MolToSmiles recurses once per atom of a chain: 20,000 carbons overflow the default 8 MB stack (SIGSEGV).
KILLER = "C" * 20000
BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY, id_column="id")
SDF_TASK = TaskSpec("t", "-", None, ("active",), TaskType.BINARY)


def demo_rows(n: int = 60) -> pd.DataFrame:
    """`n` rows of the demo HIV sample, a quarter of them active."""
    table = pd.read_csv(DEMO_HIV)
    table = pd.concat([table[table["HIV_active"] == 1].head(n // 4), table[table["HIV_active"] == 0].head(n - n // 4)]).sort_index()
    return pd.DataFrame({"id": [f"m{i}" for i in range(n)], "smiles": table["smiles"].to_numpy(), "y": table["HIV_active"].to_numpy()})


def die_on(marker: int):
    """A chunk function whose worker is killed (SIGKILL) by the item `marker`, as an out-of-memory killer would."""
    def work(items: list[int]) -> list[int]:
        for item in items:
            if item == marker:
                os.kill(os.getpid(), signal.SIGKILL)
        return [item * 10 for item in items]
    return work


def test_a_killed_worker_costs_its_item_only():
    results = map_isolated(die_on(137), list(range(1000)), isolation=Isolation(2), chunk_size=100)
    assert results[137] == Crash(-signal.SIGKILL) and results[137].reason == "RDKit crashed (signal 9)"
    assert [value for position, value in enumerate(results) if position != 137] == [item * 10 for item in range(1000) if item != 137]


def test_python_errors_in_a_worker_are_raised_with_their_traceback():
    def broken(items):
        raise ValueError("bad chunk")
    with pytest.raises(RuntimeError, match="ValueError: bad chunk"):
        map_isolated(broken, [1, 2, 3])


@pytest.mark.integration
def test_the_20000_atom_molecule_costs_one_row_in_featurization(tmp_path):
    rows = demo_rows()
    reference = featurize(rows.rename(columns={"id": "mol_id"}).assign(row=range(len(rows))), BINARY, isolation=Isolation(2))
    with_killer = pd.concat([rows.iloc[:30], pd.DataFrame({"id": ["killer"], "smiles": [KILLER], "y": [1]}), rows.iloc[30:]])
    path = tmp_path / "t.csv"
    with_killer.to_csv(path, index=False)
    result = featurize(read_task_table(path, BINARY), BINARY, isolation=Isolation(2))
    pd.testing.assert_frame_equal(result.molecules, reference.molecules)
    crashed = result.invalid[result.invalid["mol_id"] == "killer"]
    assert crashed["reason"].tolist() == [f"RDKit crashed (signal {signal.SIGSEGV})"] and crashed["row"].tolist() == [30]
    assert result.qc["crashed"] == 1 and result.qc["invalid"] == reference.qc["invalid"] + 1
    assert all(len(example["smiles"]) <= 120 for example in result.qc["invalid_examples"])  # the chain, shortened


@pytest.mark.integration
def test_the_20000_atom_molecule_costs_one_line_of_the_corpus(tmp_path):
    smiles = pd.read_csv(DEMO_HIV)["smiles"].head(40).tolist()
    settings = CorpusSettings(False, 0.25, 0, 0, True)
    reference = prepare_corpus(smiles, set(), settings, isolation=Isolation(2))
    corpus = prepare_corpus(smiles[:20] + [KILLER] + smiles[20:], set(), settings, isolation=Isolation(2))
    pd.testing.assert_frame_equal(corpus.table, reference.table)
    assert corpus.qc["crashed"] == 1 and corpus.qc["invalid"] == reference.qc["invalid"] + 1
    assert corpus.qc["crashed_examples"] == [f"{KILLER[:120]} (RDKit crashed (signal {signal.SIGSEGV}))"]


def test_a_molecule_that_crashes_a_descriptor_has_missing_targets(monkeypatch):
    from chemlm import descriptors

    chunk = descriptors.descriptor_chunk

    def crash_on_benzene(smiles, names):
        if "c1ccccc1" in smiles:
            os.kill(os.getpid(), signal.SIGSEGV)
        return chunk(smiles, names)

    monkeypatch.setattr(descriptors, "descriptor_chunk", crash_on_benzene)
    names = ("MolWt", "NumHDonors")
    values = compute_descriptors(["CCO", "c1ccccc1", "CCN"], names, isolation=Isolation(2))
    assert np.isnan(values[1]).all()
    np.testing.assert_array_equal(values[[0, 2]], chunk(["CCO", "CCN"], names))


def test_fingerprints_isolate_a_crash(monkeypatch):
    from chemlm import fingerprints

    chunk = fingerprints.ecfp4_chunk

    def crash_on_benzene(smiles, counts=False):
        if "c1ccccc1" in smiles:
            os.kill(os.getpid(), signal.SIGSEGV)
        return chunk(smiles, counts)

    monkeypatch.setattr(fingerprints, "ecfp4_chunk", crash_on_benzene)
    bits, crashed = ecfp4(["CCO", "c1ccccc1", "CCN"], ["a", "b", "c"], isolation=Isolation(2))
    assert crashed == ["b"] and bits[1].sum() == 0 and bits[[0, 2]].sum(axis=1).min() > 0


@pytest.mark.integration
def test_a_segmentation_fault_leaves_the_stack_in_the_rule_log(tmp_path):
    """faulthandler writes the Python stack of a crash that no `except` sees, below the line naming the rule."""
    log = tmp_path / "featurize.log"
    code = textwrap.dedent(f"""
        import ctypes, sys
        from types import SimpleNamespace
        sys.path.insert(0, {str(REPO / 'src')!r})
        from chemlm.logs import step_log
        job = SimpleNamespace(log=[{str(log)!r}], rule="featurize", input=["results/t/data/table.csv"])
        def parse_everything():
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        with step_log(job):
            parse_everything()
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGSEGV
    text = log.read_text()
    assert "rule featurize (input results/t/data/table.csv)" in text.splitlines()[0]
    assert "Fatal Python error: Segmentation fault" in text and "parse_everything" in text


def test_an_input_error_line_names_the_rule_and_its_input(tmp_path, capsys):
    from chemlm.logs import step_log

    job = SimpleNamespace(log=[str(tmp_path / "x.log")], rule="ingest", input=["data/t.csv"])
    with pytest.raises(SystemExit):
        with step_log(job):
            raise InputError("data/t.csv, line 3: label column 'y' has 2; expected 0 or 1")
    last = (tmp_path / "x.log").read_text().strip().splitlines()[-1]
    assert last == "ERROR in rule ingest (input data/t.csv): data/t.csv, line 3: label column 'y' has 2; expected 0 or 1"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("t.tsv", "id\tsmiles\ty\nA\tCCO\t1\nB\tCCN\t0\n"),
        ("t.tab", "id\tsmiles\ty\nA\tCCO\t1\nB\tCCN\t0\n"),
        ("t.csv", "id;smiles;y\nA;CCO;1\nB;CCN;0\n"),  # as spreadsheets export with a decimal comma
        ("t.csv", "id\tsmiles\ty\nA\tCCO\t1\nB\tCCN\t0\n"),
        ("t.tsv.gz", "id\tsmiles\ty\nA\tCCO\t1\nB\tCCN\t0\n"),
    ],
)
def test_tab_and_semicolon_separated_tables(tmp_path, caplog, name, text):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    table = read_task_table(path, BINARY)
    assert table["mol_id"].tolist() == ["A", "B"] and table["smiles"].tolist() == ["CCO", "CCN"] and table["y"].tolist() == [1.0, 0.0]
    if name == "t.csv":
        assert "header has no comma but a" in caplog.text


def test_smi_corpus_reads_smiles_and_ignores_ids(tmp_path):
    (tmp_path / "library.smi").write_text("CCO ethanol\nc1ccccc1\tbenzene\n\nCCN\n")
    corpus = build_corpus(tmp_path / "library.smi", [], CorpusSettings(False, 0.34, 0, 0, True))
    assert sorted(corpus.table["smiles"]) == ["CCN", "CCO", "c1ccccc1"] and corpus.qc["blank_lines"] == 1


SDF = """ethanol
     RDKit          2D

  3  2  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0
    1.2990    0.7500    0.0000 C   0  0
    2.5981   -0.0000    0.0000 O   0  0
  1  2  1  0
  2  3  1  0
M  END
>  <active>  (1)
1

>  <name>
EtOH

$$$$
broken
     RDKit          2D

  2  1  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0
  1  2  1  0
M  END
>  <active>
0

>  <name>
X1

$$$$
pentavalent carbon
     RDKit          2D

  6  5  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0
    1.0000    0.0000    0.0000 C   0  0
   -1.0000    0.0000    0.0000 C   0  0
    0.0000    1.0000    0.0000 C   0  0
    0.0000   -1.0000    0.0000 C   0  0
    0.5000    0.5000    0.0000 C   0  0
  1  2  1  0
  1  3  1  0
  1  4  1  0
  1  5  1  0
  1  6  1  0
M  END
>  <active>
1

>  <name>
X2

$$$$
methylamine
     RDKit          2D

  2  1  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0
    1.2990    0.7500    0.0000 N   0  0
  1  2  1  0
M  END
>  <active>
0

>  <name>
MeNH2

$$$$
"""


@pytest.mark.parametrize("compressed", [False, True])
def test_sd_file_with_properties_and_broken_records(tmp_path, compressed):
    path = tmp_path / ("library.sdf.gz" if compressed else "library.sdf")
    path.write_bytes(gzip.compress(SDF.encode()) if compressed else SDF.encode())
    table = read_task_table(path, SDF_TASK, isolation=Isolation(2))
    assert table["mol_id"].tolist() == ["ethanol", "broken", "pentavalent carbon", "methylamine"]  # title lines
    assert table["smiles"].tolist() == ["CCO", "", "", "CN"] and table["active"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert table["read_error"][0] == "" and table["read_error"][1].startswith("SD record 2: ")
    assert table["read_error"][2].startswith("SD record 3: ") and "valence" in table["read_error"][2].lower()
    result = featurize(table, SDF_TASK)
    assert result.molecules["smiles"].tolist() == ["CCO", "CN"] and result.molecules["mol_id"].tolist() == ["ethanol", "methylamine"]
    assert result.invalid["row"].tolist() == [1, 2] and result.invalid["reason"].str.startswith("SD record").all()
    assert result.qc["invalid"] == 2 and result.qc["molecules"] == 2
    named = read_task_table(path, TaskSpec("t", "-", None, ("active",), TaskType.BINARY, id_column="name"))
    assert named["mol_id"].tolist() == ["EtOH", "X1", "X2", "MeNH2"]


def test_sd_file_errors_name_the_record_or_property(tmp_path):
    path = tmp_path / "library.sdf"
    path.write_text(SDF)
    with pytest.raises(InputError, match=r"library\.sdf: no record has the SD property 'pIC50'; properties are: active, name"):
        read_task_table(path, TaskSpec("t", "-", None, ("pIC50",), TaskType.REGRESSION))
    path.write_text(SDF.replace(">  <active>\n1\n\n>  <name>\nX2", ">  <active>\n7\n\n>  <name>\nX2"))
    with pytest.raises(InputError, match=r"library\.sdf, SD record 3: label column 'active' has 7; expected 0 or 1"):
        read_task_table(path, SDF_TASK)


def test_a_column_of_invalid_smiles_says_which_column_and_why(tmp_path):
    rows = demo_rows(20)
    rows["name"] = [f"compound {i}" for i in range(20)]
    path = tmp_path / "t.csv"
    rows.to_csv(path, index=False)
    wrong = TaskSpec("t", "-", "name", ("y",), TaskType.BINARY, id_column="id")
    with pytest.raises(InputError, match=r"none of the 20 molecules in column 'name' is valid \(first reasons: invalid SMILES: "
                                         r".*\); is tasks\.t\.smiles_column the column that holds the SMILES\?"):
        featurize(read_task_table(path, wrong), wrong)
    rows.loc[:11, "smiles"] = rows.loc[:11, "name"]  # 12 of 20 invalid: a warning, in the log and the QC file
    rows.to_csv(path, index=False)
    result = featurize(read_task_table(path, BINARY), BINARY)
    assert result.qc["molecules"] == 8 and len(result.qc["warnings"]) == 1
    assert result.qc["warnings"][0].startswith("12 of the 20 molecules in column 'smiles' are invalid")


def hang_on(marker: int):
    """A chunk function that never finishes the item `marker`, as RDKit looping in C++ would not."""
    def work(items):
        results = []
        for item in items:
            if item == marker:
                time.sleep(3600)
            results.append(item * 10)
        return results
    return work


def test_an_item_that_hangs_costs_its_row_after_the_time_limit():
    started = time.monotonic()
    results = map_isolated(hang_on(137), list(range(1000)), isolation=Isolation(2, time_limit=1), chunk_size=300)
    assert results[137] == Crash(time_limit=1) and results[137].reason == "RDKit did not finish in 1 s"
    assert [value for position, value in enumerate(results) if position != 137] == [item * 10 for item in range(1000) if item != 137]
    assert time.monotonic() - started < 30


def test_a_hanging_molecule_is_an_invalid_row_of_featurization(monkeypatch):
    from chemlm import featurize

    chunk = featurize.parse_chunk

    def hang_on_benzene(smiles, isomeric):
        def taken():
            for text in smiles:
                if text == "c1ccccc1":
                    time.sleep(3600)
                yield text
        return chunk(list(taken()), isomeric)

    monkeypatch.setattr(featurize, "parse_chunk", hang_on_benzene)
    parsed = featurize.parse_all(["CCO", "c1ccccc1", "CCN"], True, isolation=Isolation(1, time_limit=1))
    assert parsed[1].error == "RDKit did not finish in 1 s"
    assert [result.canonical for result in parsed[::2]] == ["CCO", "CCN"]
