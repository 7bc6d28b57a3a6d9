"""Test-set embeddings: pooling ignores padding, batching does not change them, zero-shot is fine-tuning's start."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

from chemlm.config import CheckpointSpec, FinetuneParams
from chemlm.models.checkpoints import CheckpointError, HeadSpec, load_encoder, load_for_finetuning
from chemlm.models.embeddings import embed_sequences, load_finetuned_encoder, pool, write_embeddings
from chemlm.models.batching import tokenize
from chemlm.models.finetuning import finetune
from chemlm.tasks import TaskSpec, TaskType
from helpers import ARCHITECTURE, REPO, TINY_ARCHITECTURE, demo_molecules, tiny_scratch_entry, write_fold_files

SCRATCH = CheckpointSpec.from_config("tiny", tiny_scratch_entry())
HIV = TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY)
HEAD = HeadSpec(2, "single_label_classification", {0: "HIV_active=0", 1: "HIV_active=1"})
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def encoder_and_ids():
    encoder, tokenizer = load_encoder(SCRATCH, HEAD, seed=0)
    smiles = demo_molecules(n=40)["smiles"].tolist()
    input_ids, _ = tokenize(tokenizer, smiles, max_length=96)
    assert len({len(ids) for ids in input_ids}) > 5  # lengths differ, so batches are padded
    return encoder, input_ids, tokenizer.pad_token_id


def test_pool_takes_first_token_or_mean_over_real_tokens():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    torch.testing.assert_close(pool(hidden, mask, "cls"), hidden[:, 0])
    expected = torch.stack([hidden[0].mean(0), hidden[1, :2].mean(0)])
    torch.testing.assert_close(pool(hidden, mask, "mean"), expected)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padded_batches_give_the_unpadded_embeddings(encoder_and_ids, pooling):
    encoder, input_ids, pad_id = encoder_and_ids
    one_by_one = embed_sequences(encoder, input_ids, pooling, batch_size=1, pad_id=pad_id, device=CPU)
    all_at_once = embed_sequences(encoder, input_ids, pooling, batch_size=len(input_ids), pad_id=pad_id, device=CPU)
    assert one_by_one.shape == (40, 32) and one_by_one.dtype == np.float32
    np.testing.assert_allclose(all_at_once, one_by_one, atol=1e-5)


def test_batch_size_does_not_change_the_result(encoder_and_ids):
    encoder, input_ids, pad_id = encoder_and_ids
    results = [embed_sequences(encoder, input_ids, "mean", size, pad_id, CPU) for size in (3, 7, 1000)]
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], atol=1e-5)
    # mean and CLS pooling are different summaries
    assert not np.allclose(embed_sequences(encoder, input_ids, "cls", 7, pad_id, CPU), results[0])


def test_files_hold_the_test_fold_in_molecules_order(tmp_path):
    molecules_csv, split_csv = write_fold_files(demo_molecules(n=60), tmp_path)
    params = FinetuneParams(1e-3, (0.9, 0.999), 0.0, 16, 64, 1, 1, 96, True)
    run = tmp_path / "run"
    finetune(molecules_csv, split_csv, HIV, SCRATCH, params, 0, run / "model", run / "history.csv", run / "predictions.csv",
             run / "run.json", run / "state", run / "calibration.json")
    write_embeddings(molecules_csv, split_csv, HIV, SCRATCH, 0, run / "model", "mean", 8, 96, tmp_path / "zs.npz", tmp_path / "ft.npz")
    split = pd.read_csv(split_csv, dtype={"mol_id": str})
    for out in (tmp_path / "zs.npz", tmp_path / "ft.npz"):
        with np.load(out, allow_pickle=False) as data:
            assert data["mol_id"].tolist() == split.loc[split["fold"] == "test", "mol_id"].tolist()
            assert data["embedding"].shape == (12, 32) and data["embedding"].dtype == np.float32


def test_scratch_zero_shot_is_where_fine_tuning_starts(tmp_path):
    """With a zero learning rate fine-tuning leaves the encoder untouched: its embeddings must be the zero-shot ones."""
    molecules_csv, split_csv = write_fold_files(demo_molecules(n=60), tmp_path)
    params = FinetuneParams(0.0, (0.9, 0.999), 0.0, 16, 64, 1, 1, 96, True)
    embeddings = {}
    for seed, learning_rate in ((3, 0.0), (3, 1e-2)):
        run = tmp_path / f"lr{learning_rate}"
        finetune(
            molecules_csv, split_csv, HIV, SCRATCH, replace(params, learning_rate=learning_rate), seed,
            run / "model", run / "history.csv", run / "predictions.csv", run / "run.json", run / "state", run / "calibration.json",
        )
        write_embeddings(molecules_csv, split_csv, HIV, SCRATCH, seed, run / "model", "mean", 8, 96, run / "zs.npz", run / "ft.npz")
        embeddings[learning_rate] = np.load(run / "ft.npz")["embedding"]
        zero_shot = np.load(run / "zs.npz")["embedding"]
    np.testing.assert_array_equal(embeddings[0.0], zero_shot)
    assert not np.allclose(embeddings[1e-2], zero_shot, atol=1e-3)  # training does move them


def test_zero_shot_encoder_has_the_fine_tuning_model_weights():
    encoder, _ = load_encoder(SCRATCH, HEAD, seed=5)
    model, _ = load_for_finetuning(SCRATCH, HEAD, seed=5)
    start = model.base_model.state_dict()
    assert encoder.state_dict().keys() == start.keys()
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, start[name], rtol=0, atol=0)


def test_embeddings_import_no_rdkit():
    code = "import sys\nsys.modules['rdkit'] = None\nimport chemlm.models.embeddings\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]


def test_fine_tuned_folder_without_weights_is_an_error_naming_it(tmp_path):
    model, _ = load_for_finetuning(SCRATCH, HEAD, seed=0)
    model.config.save_pretrained(tmp_path / "model")
    with pytest.raises(CheckpointError, match=r"model: cannot be loaded: .*rerun its fine-tuning"):
        load_finetuned_encoder(tmp_path / "model")


def test_zero_shot_encoder_of_a_pre_trained_folder_holds_its_weights(tmp_path):
    config = AutoConfig.from_pretrained(ARCHITECTURE)
    config.update(TINY_ARCHITECTURE)
    torch.manual_seed(7)
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path / "mlm")
    AutoTokenizer.from_pretrained(ARCHITECTURE).save_pretrained(tmp_path / "mlm")
    encoder, _ = load_encoder(CheckpointSpec("MLM", str(tmp_path / "mlm")), HEAD, seed=0)
    saved = load_file(tmp_path / "mlm" / "model.safetensors")
    weights = encoder.state_dict()
    assert all(f"roberta.{name}" in saved for name in weights)
    for name, tensor in weights.items():
        torch.testing.assert_close(tensor, saved[f"roberta.{name}"], rtol=0, atol=0)
