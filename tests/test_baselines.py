"""ECFP4 fingerprints and the fingerprint baselines: prediction format, determinism, and that they learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from rdkit.Chem import AllChem

from chemlm.baselines import fit_baseline, load_fitted, read_count_features, read_features, read_fingerprints, save_fitted, train_baseline
from chemlm.config import BASELINES, FEATURE_BASELINES, ConfigError, Study, load_schema
from chemlm.descriptors import load_descriptor_names, write_task_features
from chemlm.folds import load_fold_tables
from chemlm.evaluate import evaluate_predictions
from chemlm.fingerprints import ecfp4, write_ecfp4
from chemlm.io import InputError
from chemlm.metrics import auroc
from chemlm.models.finetuning import prediction_table
from chemlm.models.labels import LabelEncoding
from chemlm.tasks import TaskSpec, TaskType
from helpers import DEMO_HIV, REPO, demo_molecules, write_fold_files

DESCRIPTOR_LIST = REPO / "resources" / "chemberta2-mtr-descriptors.json"

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
    write_task_features(molecules_csv, DESCRIPTOR_LIST, directory / "descriptors.npz")
    return directory, molecules_csv, split_csv


def features_file(directory, baseline):
    return directory / ("descriptors.npz" if baseline == "lgbm" else "ecfp4.npz")


def run_baseline(fold_files, task, baseline, seed=0, trees=20, name="predictions.csv"):
    directory, molecules_csv, split_csv = fold_files
    out = directory / task.name / baseline / name
    train_baseline(molecules_csv, split_csv, features_file(directory, baseline), task, baseline, seed, trees, 2, out,
                   out.with_suffix(".calibration.json"), out.with_suffix(".settings.json"))
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
@pytest.mark.parametrize("baseline", FEATURE_BASELINES)  # chemprop's: tests/test_chemprop.py
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
    boosted = [run_baseline(fold_files, task, "lgbm", seed=seed, name=name) for seed, name in ((1, "f.csv"), (1, "g.csv"), (2, "h.csv"))]
    pd.testing.assert_frame_equal(boosted[0], boosted[1])
    assert not np.allclose(boosted[0]["p:HIV_active"], boosted[2]["p:HIV_active"])  # feature_fraction draws by seed


def test_lightgbm_features_are_ecfp4_counts_and_the_mtr_descriptors(fold_files):
    directory, molecules_csv, _ = fold_files
    molecules = pd.read_csv(molecules_csv, dtype={"mol_id": str})
    values = read_features(directory / "descriptors.npz", molecules["mol_id"].to_numpy(), "lgbm")
    names = load_descriptor_names(DESCRIPTOR_LIST)
    assert values.shape == (len(molecules), 2048 + len(names)) == (len(molecules), 2247) and values.dtype == np.float32
    molecule = Chem.MolFromSmiles(molecules["smiles"][7])
    counts = AllChem.GetHashedMorganFingerprint(molecule, 2, nBits=2048).GetNonzeroElements()
    assert {int(bit): int(values[7, bit]) for bit in np.flatnonzero(values[7, :2048])} == counts
    assert values[:, :2048].max() > 1  # counts, not bits
    from rdkit.Chem import Descriptors
    functions = dict(Descriptors._descList)
    np.testing.assert_allclose(values[7, 2048:], np.array([functions[name](molecule) for name in names], dtype=np.float32), rtol=1e-6)
    assert read_count_features(directory / "descriptors.npz").shape == values.shape
    with pytest.raises(InputError, match="rerun the descriptors"):
        read_features(directory / "descriptors.npz", molecules["mol_id"].to_numpy()[::-1], "lgbm")
    with pytest.raises(InputError, match="not a features file of ECFP4 counts"):
        read_count_features(directory / "ecfp4.npz")


def test_lightgbm_stops_on_the_validation_fold(fold_files):
    directory, molecules_csv, split_csv = fold_files
    molecules = load_fold_tables(molecules_csv, split_csv)
    values = read_count_features(directory / "descriptors.npz", molecules["mol_id"].to_numpy())
    settings = {"num_leaves": 15, "learning_rate": 0.2, "n_estimators": 1000, "feature_fraction": 0.3}
    for kind in ("binary", "regression", "multiclass"):
        fitted = fit_baseline("lgbm", TASKS[kind], molecules, values, 0, 1, settings)
        model = fitted.models[0].model
        # the validation metric stopped improving long before 1,000 rounds on 100 training molecules: boosting went on
        # 50 rounds past its lowest point, and the model keeps the trees up to it
        ((metric, scores),) = model.evals_result_["valid_0"].items()
        assert metric == {"binary": "auc", "regression": "rmse", "multiclass": "multi_logloss"}[kind]
        best = np.argmax(scores) if metric == "auc" else np.argmin(scores)
        assert 1 <= model.best_iteration_ < 1000 - 50 and len(scores) == model.best_iteration_ + 50
        assert best + 1 == model.best_iteration_ == model.booster_.current_iteration()


@pytest.mark.parametrize("kind", list(TASKS))
@pytest.mark.parametrize("baseline", ["lgbm", "ecfp4_rf"])
def test_a_stored_baseline_predicts_as_the_fitted_one(fold_files, tmp_path, kind, baseline):
    directory, molecules_csv, split_csv = fold_files
    molecules = load_fold_tables(molecules_csv, split_csv)
    values = read_features(features_file(directory, baseline), molecules["mol_id"].to_numpy(), baseline)
    settings = {"n_estimators": 20, "max_features": "sqrt"} if baseline == "ecfp4_rf" else {
        "num_leaves": 15, "learning_rate": 0.1, "n_estimators": 100, "feature_fraction": 0.5}
    fitted = fit_baseline(baseline, TASKS[kind], molecules, values, 0, 1, settings)
    save_fitted(fitted, tmp_path / "model.skops")
    loaded = load_fitted(tmp_path / "model.skops", TASKS[kind])
    assert loaded.columns == fitted.columns
    np.testing.assert_allclose(loaded.predict(values), fitted.predict(values), rtol=1e-6, atol=1e-9)


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


def test_lightgbm_learns_a_property_its_descriptors_carry(fold_files):
    """The SMILES length follows from atom counts that the descriptors hold: LightGBM's test R2 is high (a model that
    ignored its features would score about 0)."""
    predictions = run_baseline(fold_files, TASKS["regression"], "lgbm").query("fold == 'test'")
    truth, predicted = predictions["y:length"].to_numpy(), predictions["p:length"].to_numpy()
    assert 1 - ((truth - predicted) ** 2).sum() / ((truth - truth.mean()) ** 2).sum() > 0.7


def test_baseline_names_are_the_schemas_and_reserved():
    assert tuple(load_schema()["properties"]["baselines"]["items"]["enum"]) == BASELINES
    task = {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"}
    with pytest.raises(ConfigError) as error:
        Study.from_config({"tasks": {"hiv": task}, "checkpoints": {"MLM": {"source": "a/b"}, "ecfp4_logreg": {"source": "a/c"}}})
    assert str(error.value) == f"config key 'checkpoints.ecfp4_logreg': the name of a baseline (reserved: {', '.join(BASELINES)})"
    assert Study.from_config({"tasks": {"hiv": task}, "checkpoints": {"MLM": {"source": "a/b"}}}).baselines == ("ecfp4_rf", "ecfp4_logreg")


def test_lightgbm_scores_a_library_from_its_shard_features(fold_files, tmp_path):
    """A library shard's features (chemlm.descriptors.write_library_features, empty for an invalid row) give the
    stored LightGBM models the scores they give the same molecules in the task's features file."""
    import gzip

    from chemlm.baselines import score_library, write_fitted
    from chemlm.descriptors import write_library_features

    directory, molecules_csv, split_csv = fold_files
    task = TASKS["multilabel"]
    out = tmp_path / "run"
    train_baseline(molecules_csv, split_csv, directory / "descriptors.npz", task, "lgbm", 0, 0, 1, out / "predictions.csv",
                   out / "calibration.json", out / "settings.json")
    write_fitted(molecules_csv, split_csv, directory / "descriptors.npz", out / "settings.json", task, "lgbm", 0, out / "model.skops")
    molecules = pd.read_csv(molecules_csv, dtype={"mol_id": str})
    smiles = molecules["smiles"].tolist()[:6]
    library = pd.DataFrame({"row": range(7), "id": [f"l{i}" for i in range(7)], "input_smiles": [*smiles[:3], "C1CC", *smiles[3:]],
                            "smiles": [*smiles[:3], "", *smiles[3:]], "valid": [True] * 3 + [False] + [True] * 3, "reason": ""})
    library.to_csv(tmp_path / "library.csv.gz", index=False, compression="gzip")
    write_library_features(tmp_path / "library.csv.gz", DESCRIPTOR_LIST, tmp_path / "descriptors.npz")
    assert read_count_features(tmp_path / "descriptors.npz").shape == (7, 2247)
    score_library([out / "model.skops"], [out / "calibration.json"], task, "isotonic", tmp_path / "library.csv.gz",
                  tmp_path / "descriptors.npz", None, tmp_path / "scored.csv.gz")
    scored = pd.read_csv(gzip.open(tmp_path / "scored.csv.gz"))
    library.iloc[:6].to_csv(tmp_path / "changed.csv.gz", index=False, compression="gzip")  # the shard changed since its features
    with pytest.raises(InputError, match="do not match the shard's rows; rerun the library_descriptors"):
        score_library([out / "model.skops"], [out / "calibration.json"], task, "isotonic", tmp_path / "changed.csv.gz",
                      tmp_path / "descriptors.npz", None, tmp_path / "stale.csv.gz")
    fitted = load_fitted(out / "model.skops", task)
    features = read_count_features(directory / "descriptors.npz", molecules["mol_id"].to_numpy())
    expected = fitted.predict(features[:6])
    # the stored model is the one whose test predictions were evaluated (fitted again with the recorded threads)
    folds = load_fold_tables(molecules_csv, split_csv)["fold"].to_numpy()
    evaluated = pd.read_csv(out / "predictions.csv").query("fold == 'test'")
    np.testing.assert_allclose(fitted.predict(features[folds == "test"]), evaluated[["p:long", "p:ring_rich"]].to_numpy(), rtol=1e-9)
    valid = scored["valid"].to_numpy()
    np.testing.assert_allclose(scored.loc[valid, ["mean:long", "mean:ring_rich"]].to_numpy(), expected, rtol=1e-6)
    assert scored.loc[~valid, "mean:long"].isna().all()
