"""Fine-tuning on CPU with a tiny scratch model: outputs, reloading, early stopping, determinism, task types."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.metrics import validation_score
from chemlm.models.batching import TokenStore, pad, tokenize, training_batches
from chemlm.models.finetuning import finetune
from chemlm.models.labels import LabelEncoding
from chemlm.tasks import TaskSpec, TaskType
from helpers import demo_molecules, tiny_scratch_entry, write_fold_files

PARAMS = FinetuneParams(
    learning_rate=1e-3,
    betas=(0.9, 0.999),
    weight_decay=0.0,
    batch_size=16,
    eval_batch_size=64,
    max_epochs=3,
    patience=3,
    max_length=64,
    class_weighted=True,
)
SCRATCH = CheckpointSpec.from_config("tiny", tiny_scratch_entry())
TASKS = {
    "binary": TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY),
    "multiclass": TaskSpec("activity", "-", "smiles", ("activity",), TaskType.MULTICLASS),
    "multilabel": TaskSpec("shape", "-", "smiles", ("long", "ring_rich"), TaskType.MULTILABEL),
    "regression": TaskSpec("size", "-", "smiles", ("length",), TaskType.REGRESSION),
}


def run_finetune(tmp_path: Path, task: TaskSpec, params: FinetuneParams = PARAMS, seed: int = 0, name: str = "run"):
    molecules_csv, split_csv = write_fold_files(demo_molecules(), tmp_path)
    out = tmp_path / name
    result = finetune(
        molecules_csv, split_csv, task, SCRATCH, params, seed,
        out / "model", out / "history.csv", out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json",
    )
    return result, out


def test_binary_outputs_reload_and_are_probabilities(tmp_path):
    result, out = run_finetune(tmp_path, TASKS["binary"])
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "valid_loss", "valid_metric", "seconds"]
    assert list(history["epoch"]) == [1, 2, 3]
    predictions = pd.read_csv(out / "predictions.csv", dtype={"mol_id": str})
    assert list(predictions.columns) == ["mol_id", "fold", "y:HIV_active", "p:HIV_active"]
    assert predictions["fold"].value_counts().to_dict() == {"valid": 48, "test": 48}
    assert predictions["p:HIV_active"].between(0, 1).all()
    # the files' mol_ids are those of the valid and test folds
    split = pd.read_csv(tmp_path / "split.csv", dtype={"mol_id": str})
    for fold in ("valid", "test"):
        assert set(predictions.loc[predictions["fold"] == fold, "mol_id"]) == set(split.loc[split["fold"] == fold, "mol_id"])

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert model.config.num_labels == 2
    assert model.config.chemlm_task["task_type"] == "binary"
    assert (out / "model" / "model.safetensors").is_file()
    # the reloaded model reproduces the saved test probabilities
    test = predictions[predictions["fold"] == "test"]
    molecules = pd.read_csv(tmp_path / "molecules.csv", dtype={"mol_id": str}).set_index("mol_id")
    batch = tokenizer(molecules.loc[test["mol_id"], "smiles"].tolist(), padding=True, truncation=True, max_length=64, return_tensors="pt")
    probabilities = model(**batch).logits.softmax(-1)[:, 1].detach().numpy()
    np.testing.assert_allclose(probabilities, test["p:HIV_active"], atol=1e-5)
    run = json.loads((out / "run.json").read_text())
    assert run["best_epoch"] == result.best_epoch and run["fold_sizes"] == {"train": 144, "valid": 48, "test": 48}
    # the folder carries what scoring new molecules needs: inputs, and the calibration fitted on validation
    assert model.config.chemlm_inputs == {"max_length": 64, "isomeric_smiles": True, "test_time_augment": None}
    calibration = json.loads((out / "calibration.json").read_text())
    assert model.config.chemlm_calibration == calibration and calibration["fitted_on"] == "valid"
    assert {"platt", "isotonic"} <= set(calibration["labels"]["HIV_active"])


def test_best_epoch_is_restored(tmp_path):
    params = replace(PARAMS, max_epochs=6, patience=2, learning_rate=3e-3)
    result, out = run_finetune(tmp_path, TASKS["binary"], params)
    history = pd.read_csv(out / "history.csv")
    best = int(history["valid_metric"].idxmax()) + 1
    assert result.best_epoch == best
    assert len(history) <= best + params.patience
    predictions = pd.read_csv(out / "predictions.csv")
    valid = predictions[predictions["fold"] == "valid"]
    restored = validation_score(TaskType.BINARY, valid[["y:HIV_active"]].to_numpy(), valid["p:HIV_active"].to_numpy())
    assert restored == pytest.approx(history["valid_metric"].max(), abs=1e-6)


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    _, first = run_finetune(tmp_path, TASKS["binary"], seed=3, name="a")
    _, second = run_finetune(tmp_path, TASKS["binary"], seed=3, name="b")
    _, third = run_finetune(tmp_path, TASKS["binary"], seed=4, name="c")
    a, b, c = (pd.read_csv(out / "predictions.csv") for out in (first, second, third))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["p:HIV_active"], c["p:HIV_active"])
    history_a, history_b = (pd.read_csv(out / "history.csv").drop(columns="seconds") for out in (first, second))
    pd.testing.assert_frame_equal(history_a, history_b)


def test_multiclass_probabilities_over_named_classes(tmp_path):
    _, out = run_finetune(tmp_path, TASKS["multiclass"])
    predictions = pd.read_csv(out / "predictions.csv")
    classes = ["p:CA", "p:CI", "p:CM"]
    assert list(predictions.columns) == ["mol_id", "fold", "y:activity", *classes]
    np.testing.assert_allclose(predictions[classes].sum(axis=1), 1.0, atol=1e-5)
    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert model.config.id2label == {0: "CA", 1: "CI", 2: "CM"}


def test_multilabel_masks_missing_labels(tmp_path):
    result, out = run_finetune(tmp_path, TASKS["multilabel"])
    predictions = pd.read_csv(out / "predictions.csv")
    assert {"p:long", "p:ring_rich", "y:long", "y:ring_rich"} <= set(predictions.columns)
    assert predictions["y:ring_rich"].isna().any()  # gaps are kept as gaps
    assert predictions[["p:long", "p:ring_rich"]].stack().between(0, 1).all()
    assert np.isfinite(pd.read_csv(out / "history.csv")[["train_loss", "valid_loss"]].to_numpy()).all()


def test_regression_predicts_in_label_units(tmp_path):
    params = replace(PARAMS, max_epochs=8, patience=8, learning_rate=3e-3)
    _, out = run_finetune(tmp_path, TASKS["regression"], params)
    predictions = pd.read_csv(out / "predictions.csv")
    history = pd.read_csv(out / "history.csv")
    # standardised targets are mapped back: predictions live on the labels' scale (mean ~4, sd ~2.5),
    # and the validation metric is the RMSE in those units
    labels = predictions["y:length"]
    assert abs(predictions["p:length"].mean() - labels.mean()) < labels.std()
    valid = predictions[predictions["fold"] == "valid"]
    rmse = float(np.sqrt(np.mean((valid["p:length"] - valid["y:length"]) ** 2)))
    assert rmse == pytest.approx(history["valid_metric"].min(), rel=1e-4)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_truncation_is_counted(tmp_path):
    from chemlm.models.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(SCRATCH)
    ids, truncated = tokenize(tokenizer, ["C" * 10, "C" * 100], max_length=32)
    assert truncated == 1
    assert [len(sequence) for sequence in ids] == [12, 32]
    full = tokenizer("C" * 100)["input_ids"]
    assert ids[1][-1] == full[-1] and ids[1][:31] == full[:31]  # the end token is kept


def test_length_bucketed_batches_cover_every_molecule_once():
    lengths = np.random.default_rng(0).integers(5, 100, size=1000)
    batches = training_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat) == list(range(1000))
    # within a batch lengths are close: padding waste is small compared with random batches
    waste = sum(lengths[b].max() * len(b) - lengths[b].sum() for b in batches)
    assert waste < 0.1 * lengths.sum()


def test_label_encoding_regression_uses_training_fold_only():
    molecules = pd.DataFrame({"y": [0.0, 2.0, 100.0]})
    task = TaskSpec("t", "-", "smiles", ("y",), TaskType.REGRESSION)
    encoding = LabelEncoding.fit(task, molecules, np.array([True, True, False]))
    assert encoding.mean == (1.0,) and encoding.std == (1.0,)
    np.testing.assert_allclose(encoding.targets(molecules)[:, 0], [-1.0, 1.0, 99.0])


def test_fine_tuning_runs_without_rdkit(tmp_path):
    """A GPU machine without RDKit runs the finetune rule on its input files alone."""
    import subprocess
    import sys

    molecules_csv, split_csv = write_fold_files(demo_molecules(n=60), tmp_path)
    code = f"""
import sys
sys.modules["rdkit"] = None  # any import of rdkit now fails
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from dataclasses import replace
from chemlm.models.finetuning import finetune
from test_training import PARAMS, SCRATCH, TASKS
out = Path({str(tmp_path)!r}) / "run"
finetune(Path({str(molecules_csv)!r}), Path({str(split_csv)!r}), TASKS["binary"], SCRATCH, replace(PARAMS, max_epochs=1), 0,
         out / "model", out / "history.csv", out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json")
assert not any(name == "rdkit" or name.startswith("rdkit.") for name in sys.modules if sys.modules[name] is not None)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "run" / "predictions.csv").is_file()


def test_token_store_batches_are_the_padded_batches():
    """Fine-tuning and MTR take batches from one padded tensor on the device: the same tensors as padding each batch."""
    rng = np.random.default_rng(0)
    input_ids = [list(rng.integers(3, 50, size=length)) for length in rng.integers(3, 40, size=100)]
    store = TokenStore(input_ids, pad_id=1, device=torch.device("cpu"))
    for size in (1, 7, 32):
        indices = rng.choice(100, size=size, replace=False)
        expected, got = pad(input_ids, indices, 1), store.batch(indices)
        for name in ("input_ids", "attention_mask"):
            assert got[name].dtype == expected[name].dtype and torch.equal(got[name], expected[name]), (size, name)
