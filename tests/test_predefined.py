"""The predefined split: a data set's published folds matched to the task's molecules by canonical SMILES."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
import yaml

from chemlm.config import ConfigError, Study
from chemlm.data.ingest import read_task_table
from chemlm.featurize import featurize
from chemlm.folds import SplitInstance
from chemlm.io import InputError, read_json
from chemlm.isolation import Isolation
from chemlm.predefined import fold_rows, match_folds, write_predefined_folds
from chemlm.splits import assign_folds, read_predefined_folds
from chemlm.tasks import FoldSource, TaskSpec, TaskType
from helpers import REPO, snakemake, tiny_config

TASTE = TaskSpec("taste", "-", "SMILES", ("Taste",), TaskType.MULTICLASS)
# The task's molecules as featurization writes them: canonical SMILES.
MOLECULES = pd.DataFrame({
    "mol_id": ["0", "1", "2", "3", "4", "5"],
    "smiles": ["CCO", "CC(=O)O", "c1ccccc1", "CCN", "OCC(O)CO", "C1CCCCC1"],
    "Taste": ["sweet", "sour", "bitter", "bitter", "sweet", "sour"],
})


def write(path, rows: dict) -> str:
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def fold_files(tmp_path, test_smiles=("C1CCCCC1",)) -> FoldSource:
    """Train, valid and test files as published: other SMILES of the same molecules, an invalid row, one not in the task."""
    train = write(tmp_path / "train.csv", {"SMILES": ["OCC", "OC(C)=O", "C1=CC=CC=C1", "not a smiles"], "Taste": ["sweet", "sour", "bitter", "x"]})
    valid = write(tmp_path / "valid.csv", {"SMILES": ["NCC", "C(O)C(O)CO"], "Taste": ["bitter", "sweet"]})
    test = write(tmp_path / "test.csv", {"SMILES": [*test_smiles, "CCCCCCCC"], "Taste": ["sour"] * (len(test_smiles) + 1)})
    return FoldSource(files=(("train", train), ("valid", valid), ("test", test)))


def test_fold_files_are_matched_by_canonical_smiles_and_their_strays_counted_and_named(tmp_path):
    folds = fold_files(tmp_path)
    assignment, found = match_folds(MOLECULES, fold_rows(TASTE, folds, tmp_path / "task.csv", Isolation()), TASTE, True)
    assert assignment["mol_id"].tolist() == MOLECULES["mol_id"].tolist()
    assert assignment["fold"].tolist() == ["train", "train", "train", "valid", "valid", "test"]
    assert found["molecules"] == {"train": 3, "valid": 2, "test": 1}
    assert (found["invalid_rows"], found["rows_not_in_task"]) == (1, 1)
    assert found["invalid"][0]["where"] == f"{tmp_path / 'train.csv'}, line 5" and "invalid SMILES" in found["invalid"][0]["reason"]
    assert found["not_in_task"] == [{"where": f"{tmp_path / 'test.csv'}, line 3", "smiles": "CCCCCCCC", "fold": "test"}]
    by_file = {source["fold"]: source for source in found["sources"]}
    assert by_file["train"] == {"path": str(tmp_path / "train.csv"), "fold": "train", "rows": 4, "matched": 3, "invalid": 1, "not_in_task": 0}


def test_a_fold_column_of_the_task_table_may_name_folds_as_data_sets_do(tmp_path):
    source = write(tmp_path / "task.csv", {"SMILES": MOLECULES["smiles"], "Taste": MOLECULES["Taste"],
                                           "split": ["TRAIN", "training", "Validation", "val", "test", "Test"]})
    rows = fold_rows(TASTE, FoldSource(column="split"), tmp_path / "task.csv", Isolation())
    assignment, found = match_folds(MOLECULES, rows, TASTE, True)
    assert assignment["fold"].tolist() == ["train", "train", "valid", "valid", "test", "test"]
    assert found["sources"] == [{"path": source, "fold": fold, "rows": 2, "matched": 2, "invalid": 0, "not_in_task": 0} for fold in ("train", "valid", "test")]
    write(tmp_path / "task.csv", {"SMILES": MOLECULES["smiles"], "Taste": MOLECULES["Taste"], "split": ["train"] * 5 + ["holdout"]})
    with pytest.raises(InputError, match=r"task.csv, line 7: fold column 'split' has 'holdout'"):
        fold_rows(TASTE, FoldSource(column="split"), tmp_path / "task.csv", Isolation())


def test_a_molecule_in_two_folds_or_in_none_is_an_error_naming_it(tmp_path):
    twice = fold_files(tmp_path, test_smiles=("C1CCCCC1", "CCO"))
    with pytest.raises(InputError, match=r"molecule CCO is in more than one fold .*train.csv, line 2 \(train\).*test.csv, line 3 \(test\)"):
        match_folds(MOLECULES, fold_rows(TASTE, twice, tmp_path / "task.csv", Isolation()), TASTE, True)
    missing = fold_files(tmp_path, test_smiles=())
    with pytest.raises(InputError, match=r"task 'taste': 1 of its 6 molecules are in no fold .*e\.g\. 5 \(C1CCCCC1\)"):
        match_folds(MOLECULES, fold_rows(TASTE, missing, tmp_path / "task.csv", Isolation()), TASTE, True)


def test_a_fold_file_without_the_smiles_column_is_named(tmp_path):
    folds = fold_files(tmp_path)
    write(tmp_path / "valid.csv", {"smiles": ["CCN"]})
    with pytest.raises(InputError, match=r"valid.csv: no column 'SMILES'"):
        fold_rows(TASTE, folds, tmp_path / "task.csv", Isolation())


def test_the_predefined_split_keeps_the_folds_for_every_seed_and_the_matching_writes_nothing_on_error(tmp_path):
    molecules_csv = tmp_path / "molecules.csv"
    MOLECULES.to_csv(molecules_csv, index=False)
    folds = fold_files(tmp_path)
    out_csv, out_json = tmp_path / "out" / "folds.csv", tmp_path / "out" / "folds.json"
    write_predefined_folds(str(molecules_csv), str(tmp_path / "task.csv"), TASTE, folds, True, Isolation(), str(out_csv), str(out_json))
    predefined = read_predefined_folds(str(out_csv), MOLECULES)
    for seed in (0, 1):
        assignment = assign_folds(MOLECULES, TASTE, "predefined", (0.8, 0.1, 0.1), SplitInstance.of_seed(seed), predefined=predefined)
        assert assignment["fold"].tolist() == ["train", "train", "train", "valid", "valid", "test"]
    assert read_json(out_json)["rows_not_in_task"] == 1
    with pytest.raises(InputError, match="rerun the fold matching"):
        read_predefined_folds(str(out_csv), MOLECULES.iloc[:5])
    out_csv.unlink(), out_json.unlink()
    with pytest.raises(InputError, match="in no fold"):
        write_predefined_folds(str(molecules_csv), "-", TASTE, fold_files(tmp_path, test_smiles=()), True, Isolation(), str(out_csv), str(out_json))
    assert not out_csv.exists() and not out_json.exists()


def test_the_config_names_a_task_without_folds_when_the_predefined_split_needs_them():
    config = {**tiny_config(), "split": {"methods": ["predefined"]}}
    task = next(iter(config["tasks"]))
    with pytest.raises(ConfigError, match=rf"tasks.{task}.folds': needed by the split 'predefined'"):
        Study.from_config(config)
    config["tasks"] = {task: {**config["tasks"][task], "folds": {"train": "a.csv", "valid": "b.csv"}}}
    with pytest.raises(ConfigError, match=rf"tasks.{task}.folds"):
        Study.from_config(config)
    config["tasks"][task]["folds"] = {"column": "fold"}
    assert Study.from_config(config).tasks[task].folds == FoldSource(column="fold")


def test_the_authors_split_of_the_taste_data_is_reproduced(shared_dir):
    """FART's own train / validation / test files against its curated table: the validation and test folds are the
    authors' 2,254 molecules each; the training file's rows that featurization dropped (one SMILES with two tastes)
    are counted as not among the task's molecules."""
    taste = shared_dir / "data" / "taste"
    task = TaskSpec("fart", str(taste / "fart_curated.csv"), "Canonicalized SMILES", ("Canonicalized Taste",), TaskType.MULTICLASS)
    molecules = featurize(read_task_table(task.source, task), task).molecules
    folds = FoldSource(files=tuple((fold, str(taste / f"fart_{name}.csv")) for fold, name in (("train", "train"), ("valid", "val"), ("test", "test"))))
    assignment, found = match_folds(molecules, fold_rows(task, folds, taste / "fart_curated.csv", Isolation()), task, True)
    assert found["molecules"]["valid"] == found["molecules"]["test"] == 2254
    assert found["invalid_rows"] == 0
    assert found["rows_not_in_task"] == sum(source["not_in_task"] for source in found["sources"] if source["fold"] == "train") > 0
    assert len(assignment) == len(molecules)


@pytest.mark.integration
def test_the_taste_study_plans_the_authors_split_beside_the_scaffold_split(tmp_path, shared_dir):
    """config/taste-study.yaml as a user runs it beside ../shared: one fold matching for the task, both splits for 3
    seeds, both protocols fine-tuned, the MLM model pre-trained once, every baseline."""
    (tmp_path / "shared").symlink_to(shared_dir)
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "resources").symlink_to(REPO / "resources")
    shutil.copy(REPO / "config" / "taste-study.yaml", workdir / "config.yaml")
    run = snakemake(workdir, "--dry-run", "--quiet", "rules")
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, flags=re.MULTILINE))
    assert {rule: int(jobs.get(rule, 0)) for rule in ("predefined_folds", "split", "pretrain", "finetune", "chemprop", "baseline", "embed")} == {
        "predefined_folds": 1, "split": 6, "pretrain": 1, "finetune": 18, "chemprop": 6, "baseline": 18, "embed": 6}
    study = Study.from_config(yaml.safe_load((REPO / "config" / "taste-study.yaml").read_text()))
    seed_protocol = study.finetune_params("fart", "MLM_seed_protocol")
    assert (seed_protocol.max_epochs, seed_protocol.batch_size, seed_protocol.learning_rate, seed_protocol.weight_decay) == (5, 16, 2e-5, 0.01)
    assert study.finetune_params("fart", "MLM").max_epochs == 15
