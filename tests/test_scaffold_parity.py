"""Scaffold split parity with deepchem on the full MoleculeNet HIV set, read back from molecules.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chemlm.data.ingest import read_task_table
from chemlm.featurize import Featurized, featurize
from chemlm.folds import SplitInstance
from chemlm.io import read_csv, write_csv
from chemlm.splits import assign_folds
from chemlm.tasks import TaskSpec, TaskType

pytestmark = pytest.mark.integration

HIV_CSV = "data/moleculenet/HIV.csv"
HIV_ROWS = 41127
# Rows RDKit 2026.9 rejects (hypervalent Al, B and Ge).
INVALID_ROWS = [137, 987, 12882, 18293, 30784, 30785, 35728]
FRACTIONS = (0.8, 0.1, 0.1)
# What deepchem's ScaffoldSplitter gives on the 41,120 valid molecules; kept to notice a changed split.
EXPECTED_SIZES = {"train": 32896, "valid": 4112, "test": 4112}


def hiv_task(path: Path) -> TaskSpec:
    return TaskSpec("hiv", str(path), "smiles", ("HIV_active",), TaskType.BINARY)


@pytest.fixture(scope="module")
def hiv(shared_dir: Path) -> tuple[TaskSpec, pd.DataFrame, Featurized]:
    path = shared_dir / HIV_CSV
    if not path.is_file():
        pytest.fail(
            f"{path} not found: this test needs the full MoleculeNet HIV.csv; set CHEMLM_SHARED to the folder "
            f"holding {HIV_CSV}"
        )
    task = hiv_task(path)
    table = read_task_table(path, task)
    return task, table, featurize(table, task)


def test_invalid_rows_are_exactly_the_qc_rows(hiv):
    _, table, result = hiv
    assert len(table) == HIV_ROWS
    assert result.qc["invalid"] == len(INVALID_ROWS)
    assert result.invalid["row"].tolist() == INVALID_ROWS
    assert [example["row"] for example in result.qc["invalid_examples"]] == INVALID_ROWS
    assert all(reason.startswith("invalid SMILES: Explicit valence") for reason in result.invalid["reason"])
    assert result.qc["molecules"] == len(result.molecules) == HIV_ROWS - len(INVALID_ROWS)
    assert result.qc["duplicate_groups"] == 0


def test_scaffold_split_matches_deepchem(hiv, tmp_path):
    import deepchem as dc  # slow to import: only here

    task, table, result = hiv
    # Split what the split rule reads: molecules.csv after a round trip (acyclic scaffolds come back as NaN).
    write_csv(result.molecules, tmp_path / "molecules.csv")
    molecules = read_csv(tmp_path / "molecules.csv", dtype={"mol_id": str})
    ours = assign_folds(molecules, task, "scaffold", FRACTIONS, SplitInstance.of_seed(0))

    original_smiles = table.set_index("mol_id").loc[molecules["mol_id"], "smiles"].to_numpy()
    dataset = dc.data.NumpyDataset(X=np.zeros((len(molecules), 1)), ids=original_smiles)
    theirs = dc.splits.ScaffoldSplitter().split(dataset, *FRACTIONS)

    mol_ids = molecules["mol_id"].to_numpy()
    sizes = {}
    for fold, indices in zip(("train", "valid", "test"), theirs):
        expected = set(mol_ids[indices])
        got = set(ours.loc[ours["fold"] == fold, "mol_id"])
        assert len(got) == len(expected), f"{fold}: {len(got)} molecules, deepchem has {len(expected)}"
        assert got == expected, f"{fold}: {len(got ^ expected)} molecules differ from deepchem"
        sizes[fold] = len(got)
    assert sizes == EXPECTED_SIZES
