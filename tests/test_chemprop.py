"""chemprop's D-MPNN baseline (chemlm.models.mpnn): the fine-tuning prediction format for every task kind, class
weights, early stopping on the validation metric with the best epoch kept, determinism, the model folder, and
library scoring."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem

from chemlm.config import ConfigError, Study, load_schema
from chemlm.evaluate import evaluate_predictions
from chemlm.folds import load_fold_tables
from chemlm.io import InputError
from chemlm.layout import CHEMPROP_DESCRIPTION
from chemlm.models.mpnn import (
    WEIGHTS,
    MpnnSettings,
    Targets,
    class_weights,
    load_mpnn,
    predict,
    score_library,
    train_chemprop,
)
from chemlm.tasks import TaskSpec, TaskType
from helpers import demo_molecules, write_fold_files

MINIMAL_CONFIG = {"tasks": {"hiv": {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"}},
                  "checkpoints": {"MLM": {"source": "a/b"}}}

TASKS = {
    "binary": TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY),
    "multiclass": TaskSpec("activity", "-", "smiles", ("activity",), TaskType.MULTICLASS),
    "multilabel": TaskSpec("shape", "-", "smiles", ("long", "ring_rich"), TaskType.MULTILABEL),
    "regression": TaskSpec("size", "-", "smiles", ("length",), TaskType.REGRESSION),
}
TINY = {"hidden_size": 16, "ffn_hidden_size": 16, "depth": 2, "max_epochs": 4, "batch_size": 32}


def settings(**values) -> MpnnSettings:
    """The config's chemprop settings (the schema's defaults) with `values` in their place, as Study.chemprop has them."""
    return MpnnSettings(**Study.from_config({**MINIMAL_CONFIG, "chemprop": values}).chemprop)


@pytest.fixture(scope="module")
def fold_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("chemprop")
    molecules = demo_molecules(n=150)
    molecules = molecules[[Chem.MolFromSmiles(text) is not None for text in molecules["smiles"]]].reset_index(drop=True)
    molecules_csv, split_csv = write_fold_files(molecules, directory)
    return directory, molecules_csv, split_csv


def run(fold_files, kind, name, seed=0, **overrides):
    directory, molecules_csv, split_csv = fold_files
    out = directory / kind / name
    table = train_chemprop(molecules_csv, split_csv, TASKS[kind], settings(**{**TINY, **overrides}), seed, 1,
                           out / "predictions.csv", out / "calibration.json", out / "settings.json", out / "model", out / "history.csv")
    return table, out


@pytest.fixture(scope="module")
def trained(fold_files):
    return {kind: run(fold_files, kind, "default") for kind in TASKS}


@pytest.mark.parametrize("kind", list(TASKS))
def test_predictions_have_the_fine_tuning_format(fold_files, trained, kind):
    table, out = trained[kind]
    baseline_like = pd.read_csv(out / "predictions.csv")
    assert list(baseline_like.columns) == list(table.columns)
    molecules = load_fold_tables(fold_files[1], fold_files[2])
    assert list(table["fold"]) == ["valid"] * int((molecules["fold"] == "valid").sum()) + ["test"] * int((molecules["fold"] == "test").sum())
    p = table.filter(like="p:")
    assert p.notna().all().all()
    if TASKS[kind].type.is_classification:
        assert p.stack().between(0, 1).all()
    if kind == "multiclass":
        assert list(p.columns) == ["p:CA", "p:CI", "p:CM"]
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    if kind == "regression":  # in the labels' units, not the scaled ones
        assert abs(p["p:length"].mean() - table["y:length"].mean()) < 2 * table["y:length"].std()
        assert abs(p["p:length"].mean()) > 1.0
    assert evaluate_predictions(table, TASKS[kind], bootstrap_samples=0, seed=0)["metrics"]
    history = pd.read_csv(out / "history.csv")
    assert np.isfinite(history["train_loss"]).all()  # multi-label gaps are masked, not NaN losses


def test_the_best_epoch_on_the_validation_metric_is_kept(fold_files):
    """With patience 2 over up to 30 epochs the run stops 2 epochs after its best validation AUROC; the kept model
    is that epoch's: its validation predictions score exactly the history's best."""
    from chemlm.metrics import auroc

    table, out = run(fold_files, "binary", "patience", max_epochs=30, patience=2, learning_rate=3e-3)
    history = pd.read_csv(out / "history.csv")
    settings = json.loads((out / "settings.json").read_text())
    best = int(history["valid_metric"].idxmax())
    assert settings["best_epoch"] == best + 1 and len(history) == best + 1 + 2 < 30
    valid = table[table["fold"] == "valid"]
    assert auroc(valid["y:HIV_active"].to_numpy(), valid["p:HIV_active"].to_numpy()) == pytest.approx(history["valid_metric"][best], abs=1e-6)


def test_same_seed_same_predictions_other_seed_other_model(fold_files, trained):
    first, _ = trained["binary"]
    again, _ = run(fold_files, "binary", "again")
    other, _ = run(fold_files, "binary", "other", seed=1)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["p:HIV_active"], other["p:HIV_active"])


@pytest.mark.parametrize("kind", list(TASKS))
def test_the_model_folder_predicts_what_was_evaluated(fold_files, trained, kind):
    table, out = trained[kind]
    assert sorted(path.name for path in (out / "model").iterdir()) == sorted([CHEMPROP_DESCRIPTION, WEIGHTS])  # no pickle
    loaded = load_mpnn(out / "model")
    model, targets = loaded.model, loaded.targets
    molecules = load_fold_tables(fold_files[1], fold_files[2])
    test = molecules[molecules["fold"] == "test"]
    predicted = predict(model, test["smiles"].tolist())
    np.testing.assert_allclose(predicted, table[table["fold"] == "test"][targets.columns].to_numpy(), rtol=1e-5, atol=1e-6)


def test_a_broken_model_folder_is_named(fold_files, trained, tmp_path):
    with pytest.raises(InputError, match=f"^{tmp_path}: not a chemprop model folder"):
        load_mpnn(tmp_path)
    _, out = trained["binary"]
    (tmp_path / CHEMPROP_DESCRIPTION).write_text((out / "model" / CHEMPROP_DESCRIPTION).read_text())
    (tmp_path / WEIGHTS).write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a chemprop model folder"):
        load_mpnn(tmp_path)


def test_class_weights_are_fine_tunings():
    binary = Targets(TaskType.MULTILABEL, ("a", "b"))
    values = np.array([[1, 0], [0, 0], [0, np.nan], [0, 1], [0, 0]], dtype=float)
    np.testing.assert_allclose(class_weights(binary, values), [4 / 1, 3 / 1])  # negatives / positives per label
    multiclass = Targets(TaskType.MULTICLASS, ("c",), classes=("x", "y", "z"))
    indices = np.array([[0], [0], [0], [1], [np.nan]])
    np.testing.assert_allclose(class_weights(multiclass, indices), [4 / (3 * 3), 4 / (3 * 1), 0.0])  # balanced; absent: 0
    assert class_weights(Targets(TaskType.REGRESSION, ("r",)), np.zeros((3, 1))) is None


def test_settings_default_to_the_schemas():
    schema = load_schema()["properties"]["chemprop"]["properties"]
    chosen = settings(depth=5)
    assert chosen.depth == 5 and chosen.hidden_size == schema["hidden_size"]["default"] == 300
    with pytest.raises(ConfigError, match="chemprop"):
        Study.from_config({**MINIMAL_CONFIG, "chemprop": {"depht": 5}})


def test_a_library_is_scored_by_the_instances_ensemble(fold_files, trained, tmp_path):
    _, first = trained["binary"]
    _, second = run(fold_files, "binary", "second", seed=3)
    molecules = load_fold_tables(fold_files[1], fold_files[2])
    smiles = molecules["smiles"].tolist()[:7]
    library = pd.DataFrame({"row": range(8), "id": [f"l{i}" for i in range(8)], "input_smiles": [*smiles, "C1CC"],
                            "smiles": [*smiles, ""], "valid": [True] * 7 + [False], "reason": [""] * 7 + ["unclosed ring"]})
    library.to_csv(tmp_path / "library.csv.gz", index=False, compression="gzip")
    rows = score_library([first / "model", second / "model"], "isotonic", 1, tmp_path / "library.csv.gz", None, tmp_path / "scored.csv.gz")
    scored = pd.read_csv(gzip.open(tmp_path / "scored.csv.gz"))
    assert rows == 8 and list(scored["row"]) == list(range(8))
    each = [predict(load_mpnn(folder / "model").model, smiles)[:, 0] for folder in (first, second)]
    np.testing.assert_allclose(scored["mean:HIV_active"][:7], np.mean(each, axis=0), rtol=1e-5)
    np.testing.assert_allclose(scored["sd:HIV_active"][:7], np.std(each, axis=0, ddof=1), rtol=1e-4, atol=1e-7)
    assert scored["calibrated:HIV_active"][:7].between(0, 1).all() and scored.iloc[7][["mean:HIV_active"]].isna().all()


def test_embeddings_are_the_learned_vectors_at_initialisation_and_trained(fold_files, tmp_path):
    """The zero-shot vectors are those of the network training starts from: a run whose steps change nothing (a
    learning rate of 1e-12) ends where it started, and its vectors are the zero-shot ones; the trained vectors are the
    model folder's. Test fold, in molecules.csv order."""
    from chemlm.models.mpnn import fingerprints, write_embeddings

    _, molecules_csv, split_csv = fold_files
    molecules = load_fold_tables(molecules_csv, split_csv)
    test = molecules[molecules["fold"] == "test"]["smiles"].tolist()
    _, trained = run(fold_files, "multilabel", "embedded", seed=5)
    _, still = run(fold_files, "multilabel", "still", seed=5, max_epochs=1, learning_rate=1e-12)
    write_embeddings(molecules_csv, split_csv, 5, trained / "model", tmp_path / "zeroshot.npz", tmp_path / "finetuned.npz")
    stages = {stage: np.load(tmp_path / f"{stage}.npz") for stage in ("zeroshot", "finetuned")}
    for stage in stages.values():
        assert stage["mol_id"].tolist() == molecules.loc[molecules["fold"] == "test", "mol_id"].tolist()
        assert stage["embedding"].shape == (len(test), 16)
    np.testing.assert_allclose(stages["finetuned"]["embedding"], fingerprints(load_mpnn(trained / "model").model, test), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stages["zeroshot"]["embedding"], fingerprints(load_mpnn(still / "model").model, test), rtol=1e-4, atol=1e-6)
    assert not np.allclose(stages["zeroshot"]["embedding"], stages["finetuned"]["embedding"], atol=1e-3)


def test_the_predict_command_scores_with_chemprop_folders(fold_files, trained, tmp_path):
    """`chemlm predict` on chemprop model folders: canonicalised as the training molecules were, the folders'
    calibration applied, an invalid row kept with its reason; mixing them with fine-tuned folders is refused."""
    from chemlm import cli

    _, out = trained["binary"]
    molecules = load_fold_tables(fold_files[1], fold_files[2])
    smiles = molecules["smiles"].tolist()[:4]
    (tmp_path / "library.smi").write_text("\n".join([*smiles, "C1CC"]) + "\n")
    assert cli.main(["predict", "--model", str(out / "model"), "--input", str(tmp_path / "library.smi"),
                     "--output", str(tmp_path / "scored.csv"), "--calibration", "isotonic"]) == 0
    scored = pd.read_csv(tmp_path / "scored.csv")
    np.testing.assert_allclose(scored["mean:HIV_active"][:4], predict(load_mpnn(out / "model").model, smiles)[:, 0], rtol=1e-5)
    calibration = json.loads((out / "calibration.json").read_text())
    from chemlm.calibration import apply

    np.testing.assert_allclose(scored["calibrated:HIV_active"][:4],
                               apply(calibration, "isotonic", ["HIV_active"], scored["mean:HIV_active"][:4].to_numpy())[:, 0], rtol=1e-6)
    assert not scored["valid"][4] and scored["reason"][4]
    (tmp_path / "finetuned").mkdir()
    assert cli.main(["predict", "--model", str(out / "model"), "--model", str(tmp_path / "finetuned"), "--input",
                     str(tmp_path / "library.smi"), "--output", str(tmp_path / "mixed.csv")]) == 2


def test_every_molecule_is_predicted_and_embedded_whatever_the_batch(trained, fold_files):
    """chemprop's loader drops a last batch of one molecule for batch norm; scoring must not: one molecule, and
    a batch size that leaves one over."""
    from chemlm.models.mpnn import fingerprints

    _, out = trained["binary"]
    model = load_mpnn(out / "model").model
    smiles = load_fold_tables(fold_files[1], fold_files[2])["smiles"].tolist()[:5]
    assert predict(model, smiles[:1]).shape == (1, 1)
    whole = predict(model, smiles)
    np.testing.assert_allclose(predict(model, smiles, batch_size=2), whole, rtol=1e-5, atol=1e-7)
    assert fingerprints(model, smiles, batch_size=4).shape == (5, 16)


def test_a_validation_fold_of_one_class_stops_on_the_validation_loss(fold_files, tmp_path):
    """AUROC is undefined on a validation fold without positives: training stops on the validation loss, as
    fine-tuning does, instead of keeping the first epoch."""
    _, molecules_csv, split_csv = fold_files
    molecules = pd.read_csv(molecules_csv)
    folds = pd.read_csv(split_csv)
    molecules.loc[folds["fold"] == "valid", "HIV_active"] = 0.0
    molecules.to_csv(tmp_path / "molecules.csv", index=False)
    out = tmp_path / "run"
    train_chemprop(tmp_path / "molecules.csv", split_csv, TASKS["binary"], settings(**{**TINY, "max_epochs": 6, "patience": 6}), 0, 1,
                   out / "predictions.csv", out / "calibration.json", out / "settings.json", out / "model", out / "history.csv")
    history = pd.read_csv(out / "history.csv")
    record = json.loads((out / "settings.json").read_text())
    assert history["valid_metric"].isna().all() and record["early_stopping_on"] == "validation loss"
    assert record["best_epoch"] == int(history["valid_loss"].idxmin()) + 1 and len(history) == 6


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_atom_attributions_of_chemprop_are_complete_and_in_rdkits_atom_order(trained, kind):
    """Integrated gradients over chemprop's atom features: one value per RDKit atom, summing to the logit's change from
    the all-zero atom features; the logit at the input is the model's own (its probability's log-odds for binary)."""
    import torch

    from chemlm.explain.mpnn_gradients import explain_mpnn_models
    from chemlm.models.mpnn import batches, load_mpnn

    _, out = trained[kind]
    smiles = ["Clc1ccc(CC(=O)NCCO)cc1", "CC[N+](C)(C)C"]
    target = {"binary": None, "multiclass": "CM", "regression": None}[kind]
    molecules = pd.DataFrame({"id": ["a", "b"], "smiles": smiles})
    atoms, explained = explain_mpnn_models({"chemprop": out / "model"}, molecules, target, steps=32)
    assert explained["complete"].all(), explained[["completeness_gap", "steps"]]
    for mol_id, text in zip(["a", "b"], smiles):
        weights = atoms[atoms["id"] == mol_id]["weight"]
        row = explained[explained["id"] == mol_id].iloc[0]
        assert len(weights) == Chem.MolFromSmiles(text).GetNumAtoms()
        assert weights.sum() == pytest.approx(row["output"] - row["baseline_output"], abs=0.05 * abs(row["output"] - row["baseline_output"]) + 1e-3)
    if kind == "binary":
        with torch.no_grad():
            probability = load_mpnn(out / "model").model(*next(batches(smiles[:1], 1, torch.device("cpu"))))
        assert explained["output"].iloc[0] == pytest.approx(float(torch.logit(probability.reshape(-1)[0].double())), abs=1e-4)
