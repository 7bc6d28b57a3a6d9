"""ECFP4 fingerprints and the fingerprint baselines: prediction format, determinism, and that they learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from chemlm.baselines import read_fingerprints, train_baseline
from chemlm.config import BASELINES, ConfigError, Study, load_schema
from chemlm.evaluate import evaluate_predictions
from chemlm.fingerprints import ecfp4, write_ecfp4
from chemlm.io import InputError
from chemlm.metrics import auroc
from chemlm.models.finetuning import prediction_table
from chemlm.models.labels import LabelEncoding
from chemlm.tasks import TaskSpec, TaskType
from helpers import DEMO_HIV, demo_molecules, write_fold_files

TASKS = {
    "binary": TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY),
    "multiclass": TaskSpec("activity", "-", "smiles", ("activity",), TaskType.MULTICLASS),
    "multilabel": TaskSpec("shape", "-", "smiles", ("long", "ring_rich"), TaskType.MULTILABEL),
    "regression": TaskSpec("size", "-", "smiles", ("length",), TaskType.REGRESSION),
}


def parsable(molecules: pd.DataFrame) -> pd.DataFrame:
    """Without the demo sample's SMILES that RDKit rejects (featurize drops them before fingerprints are made)."""
    return molecules[[Chem.MolFromSmiles(smiles) is not None for smiles in molecules["smiles"]]].reset_index(drop=True)


@pytest.fixture(scope="module")
def fold_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("baselines")
    molecules_csv, split_csv = write_fold_files(parsable(demo_molecules(n=150)), directory)
    write_ecfp4(molecules_csv, directory / "ecfp4.npz")
    return directory, molecules_csv, split_csv


def run_baseline(fold_files, task, baseline, seed=0, trees=20, name="predictions.csv"):
    directory, molecules_csv, split_csv = fold_files
    out = directory / task.name / baseline / name
    train_baseline(molecules_csv, split_csv, directory / "ecfp4.npz", task, baseline, seed, trees, 2, out, out.with_suffix(".calibration.json"), out.with_suffix(".settings.json"))
    return pd.read_csv(out, dtype={"mol_id": str, "fold": str})


def test_fingerprints_are_rdkit_morgan_radius_2_and_round_trip(fold_files):
    directory, molecules_csv, _ = fold_files
    molecules = pd.read_csv(molecules_csv, dtype={"mol_id": str})
    bits = read_fingerprints(directory / "ecfp4.npz", molecules["mol_id"].to_numpy())
    assert bits.shape == (len(molecules), 2048) and bits.dtype == np.uint8
    reference = AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(molecules["smiles"][7]), 2, nBits=2048)
    assert np.flatnonzero(bits[7]).tolist() == list(reference.GetOnBits())
    with pytest.raises(InputError, match="rerun the fingerprints"):
        read_fingerprints(directory / "ecfp4.npz", molecules["mol_id"].to_numpy()[::-1])


def test_unparsable_smiles_names_its_molecule():
    with pytest.raises(InputError, match="molecule 'b'"):
        ecfp4(["CCO", "C1CC"], ["a", "b"])


@pytest.mark.parametrize("kind", list(TASKS))
@pytest.mark.parametrize("baseline", BASELINES)
def test_predictions_have_the_fine_tuning_format(fold_files, kind, baseline):
    task = TASKS[kind]
    predictions = run_baseline(fold_files, task, baseline)
    # what fine-tuning would write for the same molecules and split
    molecules = pd.read_csv(fold_files[1], dtype={"mol_id": str})
    molecules["fold"] = pd.read_csv(fold_files[2], dtype={"mol_id": str})["fold"]
    encoding = LabelEncoding.fit(task, molecules, (molecules["fold"] == "train").to_numpy())
    width = len(encoding.prediction_columns())
    expected = pd.concat(
        [prediction_table(encoding, molecules, fold, np.zeros(((molecules["fold"] == fold).sum(), width))) for fold in ("valid", "test")],
        ignore_index=True,
    )
    assert list(predictions.columns) == list(expected.columns)
    truth = [column for column in expected.columns if not column.startswith("p:")]
    pd.testing.assert_frame_equal(predictions[truth], expected[truth].astype(predictions[truth].dtypes.to_dict()))
    p = predictions.filter(like="p:")
    assert p.notna().all().all()
    if task.type.is_classification:
        assert p.stack().between(0, 1).all()
    if task.type is TaskType.MULTICLASS:
        assert list(p.columns) == ["p:CA", "p:CI", "p:CM"]
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # and evaluation reads them as it reads fine-tuning's
    metrics = evaluate_predictions(predictions, task, bootstrap_samples=0, seed=0)["metrics"]
    assert metrics


def test_same_seed_same_predictions_other_seed_other_forest(fold_files):
    task = TASKS["binary"]
    first = run_baseline(fold_files, task, "ecfp4_rf", seed=1, name="a.csv")
    again = run_baseline(fold_files, task, "ecfp4_rf", seed=1, name="b.csv")
    other = run_baseline(fold_files, task, "ecfp4_rf", seed=2, name="c.csv")
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["p:HIV_active"], other["p:HIV_active"])
    linear = [run_baseline(fold_files, task, "ecfp4_logreg", seed=1, name=name) for name in ("d.csv", "e.csv")]
    pd.testing.assert_frame_equal(*linear)


def test_one_class_in_training_predicts_it(tmp_path):
    molecules = parsable(demo_molecules(n=60))
    molecules["long"] = 1.0  # a multi-label column with a single class
    molecules_csv, split_csv = write_fold_files(molecules, tmp_path)
    write_ecfp4(molecules_csv, tmp_path / "ecfp4.npz")
    out = tmp_path / "predictions.csv"
    train_baseline(molecules_csv, split_csv, tmp_path / "ecfp4.npz", TASKS["multilabel"], "ecfp4_logreg", 0, 10, 1, out, tmp_path / "calibration.json", tmp_path / "settings.json")
    predictions = pd.read_csv(out)
    assert (predictions["p:long"] == 1.0).all() and predictions["p:ring_rich"].between(0, 1).all()


def test_random_forest_on_the_hiv_sample_beats_chance(tmp_path):
    table = parsable(pd.read_csv(DEMO_HIV))
    molecules = pd.DataFrame({"mol_id": [f"m{i}" for i in range(len(table))], "smiles": table["smiles"], "HIV_active": table["HIV_active"]})
    molecules_csv, split_csv = write_fold_files(molecules, tmp_path)
    write_ecfp4(molecules_csv, tmp_path / "ecfp4.npz")
    out = tmp_path / "predictions.csv"
    train_baseline(molecules_csv, split_csv, tmp_path / "ecfp4.npz", TASKS["binary"], "ecfp4_rf", 0, 100, 2, out, tmp_path / "calibration.json", tmp_path / "settings.json")
    test = pd.read_csv(out).query("fold == 'test'")
    assert test["y:HIV_active"].sum() >= 10
    assert auroc(test["y:HIV_active"].to_numpy(), test["p:HIV_active"].to_numpy()) > 0.65  # 0.74 with this seed; chance is 0.5


def test_baseline_names_are_the_schemas_and_reserved():
    assert tuple(load_schema()["properties"]["baselines"]["items"]["enum"]) == BASELINES
    task = {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"}
    with pytest.raises(ConfigError) as error:
        Study.from_config({"tasks": {"hiv": task}, "checkpoints": {"MLM": {"source": "a/b"}, "ecfp4_logreg": {"source": "a/c"}}})
    assert str(error.value) == "config key 'checkpoints.ecfp4_logreg': the name of a baseline (reserved: ecfp4_rf, ecfp4_logreg)"
    assert Study.from_config({"tasks": {"hiv": task}, "checkpoints": {"MLM": {"source": "a/b"}}}).baselines == BASELINES
