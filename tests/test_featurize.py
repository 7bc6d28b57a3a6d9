"""RDKit featurization: invalid rows, canonical SMILES, duplicate merging, scaffolds and QC counts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from chemlm.featurize import featurize
from chemlm.io import InputError
from chemlm.tasks import TaskSpec, TaskType

BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
MULTICLASS = TaskSpec("t", "-", "smiles", ("kind",), TaskType.MULTICLASS)
MULTILABEL = TaskSpec("t", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
REGRESSION = TaskSpec("t", "-", "smiles", ("logS",), TaskType.REGRESSION)


def task_table(smiles: list, **labels: list) -> pd.DataFrame:
    """A table as ingest writes it: mol_id, row, smiles, labels."""
    return pd.DataFrame(
        {"mol_id": [f"m{i}" for i in range(len(smiles))], "row": range(len(smiles)), "smiles": smiles, **labels}
    )


def test_invalid_and_empty_smiles_are_counted_and_listed():
    table = task_table(
        ["CCO", "C1CC", "", "   ", np.nan, "CN(C)(C)(C)C", "xyz", "c1ccccc1"], y=[1, 0, 1, 0, 1, 0, 1, 0]
    )
    result = featurize(table, BINARY)

    assert result.molecules["mol_id"].tolist() == ["m0", "m7"]
    assert result.invalid["row"].tolist() == [1, 2, 3, 4, 5, 6]
    assert result.invalid["mol_id"].tolist() == ["m1", "m2", "m3", "m4", "m5", "m6"]
    reasons = dict(zip(result.invalid["row"], result.invalid["reason"]))
    assert reasons[2] == reasons[3] == reasons[4] == "empty SMILES"
    assert "unclosed ring" in reasons[1]
    assert "Explicit valence for atom # 1 N, 5, is greater than permitted" in reasons[5]
    assert "syntax error" in reasons[6]
    assert all(reason.count("\n") == 0 for reason in result.invalid["reason"])
    qc = result.qc
    assert (qc["rows"], qc["valid"], qc["invalid"], qc["empty"], qc["molecules"]) == (8, 2, 3, 3, 2)
    assert [example["row"] for example in qc["invalid_examples"]] == [1, 2, 3, 4, 5, 6]
    json.dumps(qc)  # qc.json must be writable as it is


def test_rdkit_messages_stay_off_stderr(capfd):
    featurize(task_table(["C1CC", "CN(C)(C)(C)C", "[H][H].[H]"], y=[1, 0, 1]), BINARY)
    assert capfd.readouterr().err == ""


def test_invalid_examples_are_capped_at_twenty():
    result = featurize(task_table(["C1CC"] * 25 + ["CCO"], y=[1] * 26), BINARY)
    assert result.qc["invalid"] == 25
    assert len(result.invalid) == 25
    assert len(result.qc["invalid_examples"]) == 20


def test_rows_with_every_label_missing_are_dropped():
    table = task_table(["CCO", "CCN", "CCC"], a=[np.nan, 1.0, np.nan], b=[np.nan, np.nan, 0.0])
    result = featurize(table, MULTILABEL)
    assert result.molecules["mol_id"].tolist() == ["m1", "m2"]
    assert result.invalid[["row", "reason"]].values.tolist() == [[0, "missing label"]]
    assert result.qc["missing_label"] == 1
    assert result.qc["valid"] == 3


def test_canonical_smiles_merge_spellings_of_one_molecule():
    table = task_table(["OCC", "CCN", "C(O)C", "[CH3][CH2][OH]"], y=[1, 0, 1, 1])
    result = featurize(table, BINARY)
    assert result.molecules["smiles"].tolist() == ["CCO", "CCN"]
    assert result.molecules["mol_id"].tolist() == ["m0", "m1"]  # first mol_id, first-appearance order
    assert result.molecules["y"].tolist() == [1.0, 0.0]
    assert result.duplicates.to_dict("records") == [
        {"smiles": "CCO", "mol_ids": "m0;m2;m3", "rows": "0;2;3", "conflicting": False}
    ]
    assert (result.qc["duplicate_rows_merged"], result.qc["duplicate_groups"]) == (2, 1)
    assert result.invalid.empty


def test_conflicting_binary_labels_are_reported_and_dropped():
    table = task_table(["OCC", "c1ccccc1", "C(O)C", "CCN"], y=[1, 0, 0, 1])
    result = featurize(table, BINARY)
    assert result.molecules["mol_id"].tolist() == ["m1", "m3"]
    assert result.duplicates["conflicting"].tolist() == [True]
    assert result.invalid["row"].tolist() == [0, 2]
    assert set(result.invalid["reason"]) == {"conflicting labels between duplicates"}
    qc = result.qc
    assert (qc["conflicting_label_groups"], qc["dropped_conflicting"], qc["molecules"]) == (1, 1, 2)


def test_duplicates_agreeing_after_a_missing_label_keep_the_label():
    table = task_table(["OCC", "C(O)C", "CCN"], kind=["acid", "acid", "base"])
    result = featurize(table, MULTICLASS)
    assert result.molecules["kind"].tolist() == ["acid", "base"]
    assert result.duplicates["conflicting"].tolist() == [False]


def test_multilabel_conflict_makes_only_that_label_missing():
    table = task_table(["OCC", "C(O)C", "CCN"], a=[1.0, 0.0, 1.0], b=[1.0, np.nan, 0.0])
    result = featurize(table, MULTILABEL)
    ethanol = result.molecules.iloc[0]
    assert ethanol["mol_id"] == "m0"
    assert math.isnan(ethanol["a"])
    assert ethanol["b"] == 1.0
    assert result.duplicates["conflicting"].tolist() == [True]
    assert (result.qc["conflicting_label_groups"], result.qc["dropped_conflicting"]) == (1, 0)
    assert result.invalid.empty


def test_regression_duplicates_take_the_mean():
    table = task_table(["OCC", "C(O)C", "CCN", "NCC"], logS=[1.0, 2.0, -0.5, -0.5])
    result = featurize(table, REGRESSION)
    assert result.molecules["logS"].tolist() == [1.5, -0.5]
    assert result.duplicates["conflicting"].tolist() == [True, False]
    assert result.qc["dropped_conflicting"] == 0


def test_isomeric_flag_keeps_or_drops_stereo():
    table = task_table(["C[C@H](O)CC", "C[C@@H](O)CC"], logS=[1.0, 3.0])
    isomeric = featurize(table, REGRESSION, isomeric=True)
    flat = featurize(table, REGRESSION, isomeric=False)
    assert isomeric.molecules["smiles"].tolist() == ["CC[C@H](C)O", "CC[C@@H](C)O"]  # (S)- and (R)-butan-2-ol
    assert flat.molecules["smiles"].tolist() == ["CCC(C)O"]
    assert flat.molecules["logS"].tolist() == [2.0]


def test_scaffold_is_bemis_murcko_without_chirality():
    table = task_table(["Cc1ccccc1", "CCO", "C[C@H]1CCC[C@@H](c2ccccc2)C1"], y=[1, 0, 1])
    scaffolds = featurize(table, BINARY).molecules["scaffold"].tolist()
    assert scaffolds == ["c1ccccc1", "", "c1ccc(C2CCCCC2)cc1"]


def test_molecules_columns_follow_the_design():
    result = featurize(task_table(["CCO"], a=[1.0], b=[0.0]), MULTILABEL)
    assert list(result.molecules.columns) == ["mol_id", "smiles", "scaffold", "a", "b"]
    assert list(result.invalid.columns) == ["row", "mol_id", "smiles", "reason"]
    assert list(result.duplicates.columns) == ["smiles", "mol_ids", "rows", "conflicting"]


def test_integer_labels_read_from_csv_can_still_be_merged():
    # read_csv gives int64 when no label is missing; a merged mean or missing value must still fit.
    result = featurize(task_table(["OCC", "C(O)C", "CCN"], logS=[1, 2, 3]), REGRESSION)
    assert result.molecules["logS"].tolist() == [1.5, 3.0]


def test_missing_label_column_is_an_input_error():
    with pytest.raises(InputError, match="no column 'y'"):
        featurize(task_table(["CCO"], z=[1]), BINARY)


def test_qc_counts_add_up():
    table = task_table(
        ["CCO", "", "C1CC", "CCN", "OCC", "NCC", "c1ccccc1", "C(O)C", "CC"],
        y=[1, 0, 1, np.nan, 1, 0, 0, 1, 1],
    )
    result = featurize(table, BINARY)
    qc = result.qc
    # CCN has no label; NCC conflicts with nothing (CCN was dropped first); ethanol rows 0, 4, 7 agree.
    assert qc["valid"] + qc["invalid"] + qc["empty"] == qc["rows"] == 9
    assert (
        qc["molecules"] == qc["valid"] - qc["missing_label"] - qc["duplicate_rows_merged"] - qc["dropped_conflicting"]
    )
    assert result.molecules["mol_id"].tolist() == ["m0", "m5", "m6", "m8"]
    assert len(result.invalid) == qc["invalid"] + qc["empty"] + qc["missing_label"] == 3
