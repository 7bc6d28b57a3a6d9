"""The table of bad inputs: each gives a one-line error naming file, row or key, or a counted QC entry."""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml

from chemlm.config import CheckpointSpec, describe_config_error, load_schema
from chemlm.data.ingest import read_task_table
from chemlm.evaluate import evaluate_predictions
from chemlm.featurize import featurize
from chemlm.io import InputError, atomic_path
from chemlm.models.checkpoints import CheckpointError, HeadSpec, load_for_finetuning
from chemlm.tasks import TaskSpec, TaskType
from helpers import REPO

BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
MULTILABEL = TaskSpec("t", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)


@dataclass(frozen=True)
class Fails:
    """A one-line error matching this pattern."""

    pattern: str


@dataclass(frozen=True)
class Counted:
    """Featurization goes on; the QC file counts these."""

    counts: dict


CASES = {
    "invalid SMILES": ("smiles,y\nCCO,1\nC1CC,0\nCCN,0\n", BINARY, Counted({"invalid": 1, "molecules": 2})),
    "empty SMILES": ("smiles,y\nCCO,1\n,0\n   ,0\nCCN,0\n", BINARY, Counted({"empty": 2, "molecules": 2})),
    "missing SMILES column": ("smi,y\nCCO,1\n", BINARY, Fails(r"t\.csv: no column 'smiles' \(task 't'\)")),
    "missing label column": ("smiles,x\nCCO,1\n", BINARY, Fails(r"t\.csv: no column 'y' \(task 't'\)")),
    "empty file": ("", BINARY, Fails(r"t\.csv: file is empty")),
    "header only": ("smiles,y\n", BINARY, Fails(r"t\.csv: no data rows \(header only\)")),
    "non-numeric label": ("smiles,y\nCCO,1\nCCN,yes\n", BINARY, Fails(r"t\.csv, line 3: label column 'y' has non-numeric value 'yes'")),
    "NaN labels": ("smiles,y\nCCO,1\nCCN,\nCCC,NaN\nCCCC,NA\nCCCl,0\n", BINARY, Counted({"missing_label": 3, "molecules": 2})),
    "one class only": ("smiles,y\nCCO,0\nCCN,0\n", BINARY, Fails(r"label column 'y' has only one class \(0\)")),
    "conflicting duplicates": ("smiles,y\nOCC,1\nC(O)C,0\nCCN,0\nCCC,1\n", BINARY, Counted({"conflicting_label_groups": 1, "dropped_conflicting": 1, "molecules": 2})),
    "multi-label conflict": ("smiles,a,b\nOCC,1,0\nC(O)C,0,0\nCCN,0,1\n", MULTILABEL, Counted({"conflicting_label_groups": 1, "molecules": 2})),
    "BOM, CRLF and stray spaces": ("\ufeff smiles , y \r\n CCO , 1 \r\nCCN,0\r\n", BINARY, Counted({"invalid": 0, "molecules": 2})),
    "semicolon-separated CSV": ("smiles;y\nCCO;1\nCCN;0\n", BINARY, Counted({"molecules": 2})),
    "tab-separated CSV": ("smiles\ty\nCCO\t1\nCCN\t0\n", BINARY, Counted({"molecules": 2})),
    "a SMILES that crashes RDKit": (f"smiles,y\nCCO,1\n{'C' * 20000},1\nCCN,0\n", BINARY, Counted({"crashed": 1, "invalid": 1, "molecules": 2})),
    "no valid SMILES (the wrong column)": ("smiles,y\nethanol,1\namine,0\n", BINARY, Fails(r"task 't': none of the 2 molecules in column 'smiles' is valid")),
}
# (file name, text, task, expected) of inputs that are not CSV
FILES = {
    "TSV": ("t.tsv", "smiles\ty\nCCO\t1\nCCN\t0\n", BINARY, Counted({"molecules": 2})),
    "SD file with a broken record": (
        "t.sdf",
        "ok\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 C   0  0\nM  END\n> <y>\n1\n\n$$$$\n"
        "bad\n\n\n  2  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n> <y>\n0\n\n$$$$\n"
        "ok2\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 N   0  0\nM  END\n> <y>\n0\n\n$$$$\n",
        TaskSpec("t", "-", None, ("y",), TaskType.BINARY),
        Counted({"invalid": 1, "molecules": 2}),
    ),
    "SD file without the label property": (
        "t.sdf", "ok\n\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 C   0  0\nM  END\n$$$$\n",
        TaskSpec("t", "-", None, ("y",), TaskType.BINARY), Fails(r"t\.sdf: no record has the SD property 'y'; properties are: none"),
    ),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", [*CASES, *FILES])
def test_bad_table(tmp_path, name):
    filename, text, task, expected = FILES[name] if name in FILES else ("t.csv", *CASES[name])
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8", newline="")
    if isinstance(expected, Fails):
        with pytest.raises(InputError, match=expected.pattern) as caught:
            featurize(read_task_table(path, task), task)
        assert "\n" not in str(caught.value)
        return
    result = featurize(read_task_table(path, task), task)
    for key, count in expected.counts.items():
        assert result.qc[key] == count, key
    assert len(result.molecules) == result.qc["molecules"]


def test_gzip_input_with_any_name(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(gzip.compress(b"smiles,y\nCCO,1\nCCN,0\n"))
    assert featurize(read_task_table(path, BINARY), BINARY).qc["molecules"] == 2


def test_invalid_smiles_reason_names_row_and_rdkit_message(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("smiles,y\nCCO,1\nC(C)(C)(C)(C)C,0\nCCN,0\n")
    invalid = featurize(read_task_table(path, BINARY), BINARY).invalid
    assert invalid["row"].tolist() == [1]
    assert "valence" in invalid["reason"].iloc[0].lower()


def test_test_fold_with_one_class_says_auroc_is_undefined(caplog):
    predictions = pd.DataFrame(
        {"mol_id": list("abcdef"), "fold": ["valid"] * 3 + ["test"] * 3, "y:y": [0, 1, 0, 0, 0, 0], "p:y": [0.2, 0.8, 0.3, 0.1, 0.6, 0.4]}
    )
    with caplog.at_level(logging.WARNING):
        result = evaluate_predictions(predictions, BINARY, bootstrap_samples=20, seed=0)
    assert np.isnan(result["metrics"]["auroc"]) and result["metrics"]["tn@0.5"] == 2
    assert "AUROC undefined" in caplog.text and "one class" in caplog.text


HEAD = HeadSpec(2, "single_label_classification", {0: "0", 1: "1"})


def test_checkpoint_path_that_does_not_exist():
    with pytest.raises(CheckpointError, match=r"^checkpoint 'mine' \(/no/such/model\): no such folder"):
        load_for_finetuning(CheckpointSpec("mine", "/no/such/model"), HEAD, 0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.update(epochs=3), "config key 'epochs': unknown key"),
        (lambda c: c["finetune"].update(max_epochs="ten"), "config key 'finetune.max_epochs': 'ten' is not of type 'integer'"),
        (lambda c: c["tasks"]["hiv"].update(label_columns="HIV_active"), "config key 'tasks.hiv.label_columns': 'HIV_active' is not of type 'array'"),
        (lambda c: c["checkpoints"]["MLM"].update(trust_remote_code="yes"), "config key 'checkpoints.MLM.trust_remote_code': 'yes' is not of type 'boolean'"),
    ],
)
def test_bad_config(mutate, message):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    mutate(config)
    assert describe_config_error(config, load_schema()).startswith(message)


def test_failed_step_leaves_no_partial_output(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half a tab")
            raise RuntimeError("killed mid-write")
    assert not target.exists() and list(target.parent.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("new")
            raise RuntimeError("failed")
    assert target.read_text() == "old"  # a failed rewrite keeps the previous complete output
