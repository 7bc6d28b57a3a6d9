"""Pre-training on a tiny corpus: MLM and MTR train (losses fall), save, reload with Auto classes and fine-tune;
masking rates; the regex tokenizer; `pretrained:<name>` checkpoints."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from chemlm import layout
from chemlm.config import CheckpointSpec, ConfigError, FinetuneParams, PretrainSpec, Study
from chemlm.descriptors import descriptor_targets, load_descriptor_names, write_targets
from chemlm.models.checkpoints import CheckpointError, HeadSpec, load_for_finetuning
from chemlm.models.pretraining import SIZE_PRESETS, mask_tokens, pretrain
from chemlm.models.tokenizers import build_regex_tokenizer
from chemlm.models.finetuning import finetune
from chemlm.tasks import TaskSpec, TaskType
from helpers import ARCHITECTURE, REPO, demo_molecules, simulate_gpu_memory_limit, write_fold_files

CORPUS = REPO / "resources" / "demo" / "pretrain_corpus.txt.gz"
DESCRIPTOR_LIST = REPO / "resources" / "chemberta2-mtr-descriptors.json"
SPEC = PretrainSpec("tiny", "mlm", "small", "chemberta2", epochs=4, batch_size=16, learning_rate=2e-3, max_length=96)
HIV = TaskSpec("hiv", "-", "smiles", ("HIV_active",), TaskType.BINARY)
FINETUNE = FinetuneParams(1e-3, (0.9, 0.999), 0.0, 16, 64, 1, 1, 96, True)


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory) -> tuple[Path, Path]:
    """smiles.csv (320 corpus molecules, 64 held out) and their descriptor targets, as the chemistry rules write them."""
    directory = tmp_path_factory.mktemp("corpus")
    with gzip.open(CORPUS, "rt") as handle:
        smiles = [next(handle).strip() for _ in range(320)]
    table = pd.DataFrame({"smiles": smiles, "fold": np.where(np.arange(320) % 5 == 0, "holdout", "train")})
    table.to_csv(directory / "smiles.csv", index=False)
    targets = descriptor_targets(smiles, (table["fold"] == "train").to_numpy(), load_descriptor_names(DESCRIPTOR_LIST))
    write_targets(targets, directory / "descriptors.npz")
    return directory / "smiles.csv", directory / "descriptors.npz"


def run_pretrain(corpus_files, directory: Path, spec: PretrainSpec = SPEC):
    smiles_csv, descriptors_npz = corpus_files
    result = pretrain(
        smiles_csv, descriptors_npz if spec.objective == "mtr" else None, ARCHITECTURE, spec, 0,
        directory / "model", directory / "history.csv", directory / "run.json", directory / "state",
    )
    return result, directory


@pytest.fixture(scope="module")
def mlm_run(corpus_files, tmp_path_factory):
    return run_pretrain(corpus_files, tmp_path_factory.mktemp("mlm"))


@pytest.fixture(scope="module")
def mtr_run(corpus_files, tmp_path_factory):
    spec = replace(SPEC, name="tiny-mtr", objective="mtr", tokenizer="regex", epochs=6)
    return run_pretrain(corpus_files, tmp_path_factory.mktemp("mtr"), spec)


def finetune_from(model_dir: Path, tmp_path: Path):
    molecules_csv, split_csv = write_fold_files(demo_molecules(120), tmp_path)
    out = tmp_path / "finetuned"
    checkpoint = CheckpointSpec("pretrained", str(model_dir))
    return finetune(
        molecules_csv, split_csv, HIV, checkpoint, FINETUNE, 0,
        out / "model", out / "history.csv", out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json",
    ), out


def test_mlm_loss_falls_and_history_is_saved(mlm_run):
    result, out = mlm_run
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "holdout_loss", "holdout_masked_accuracy", "seconds"]
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["holdout_loss"].iloc[-1] < history["holdout_loss"].iloc[0]
    assert 0 < history["holdout_masked_accuracy"].iloc[-1] <= 1
    run = json.loads((out / "run.json").read_text())
    assert run["corpus"] == {"train": 256, "holdout": 64} and run["pretrain"]["objective"] == "mlm"


def test_mlm_folder_loads_with_auto_classes_and_fine_tunes(mlm_run, tmp_path):
    _, out = mlm_run
    encoder = AutoModel.from_pretrained(out / "model")
    assert encoder.config.hidden_size == SIZE_PRESETS["small"]["hidden_size"] == 64
    assert encoder.config.chemlm_pretraining["objective"] == "mlm"
    saved = load_file(out / "model" / "model.safetensors")
    torch.testing.assert_close(encoder.embeddings.word_embeddings.weight, saved["roberta.embeddings.word_embeddings.weight"])
    assert AutoTokenizer.from_pretrained(out / "model").get_vocab() == AutoTokenizer.from_pretrained(ARCHITECTURE).get_vocab()
    result, finetuned = finetune_from(out / "model", tmp_path)
    assert len(result.history) == 1 and (finetuned / "predictions.csv").is_file()


def test_encoder_weight_of_wrong_shape_is_refused(mlm_run, tmp_path):
    """Heads of another size are replaced when fine-tuning starts; an encoder weight of another size is an error."""
    _, out = mlm_run
    shutil.copytree(out / "model", tmp_path / "model")
    weights = load_file(tmp_path / "model" / "model.safetensors")
    weights["roberta.encoder.layer.0.output.dense.weight"] = torch.zeros(64, 64)
    save_file(weights, tmp_path / "model" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="refusing to fine-tune randomly initialised weights"):
        load_for_finetuning(CheckpointSpec("bad", str(tmp_path / "model")), HeadSpec(2, "single_label_classification", {0: "a", 1: "b"}), 0)


def test_mtr_loss_falls_and_r2_is_recorded(mtr_run):
    _, out = mtr_run
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "holdout_loss", "holdout_r2", "seconds"]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["holdout_loss"].iloc[-1] < history["holdout_loss"].iloc[0]
    assert history["holdout_r2"].iloc[-1] > history["holdout_r2"].iloc[0]
    run = json.loads((out / "run.json").read_text())
    assert 0 < run["descriptors_scored"] <= 199 and len(run["holdout_r2_by_descriptor"]) == run["descriptors_scored"]


def test_mtr_folder_keeps_descriptors_and_fine_tunes_its_encoder(mtr_run, tmp_path):
    _, out = mtr_run
    names = load_descriptor_names(DESCRIPTOR_LIST)
    regression = AutoModelForSequenceClassification.from_pretrained(out / "model")
    assert regression.config.num_labels == 199 and regression.config.problem_type == "regression"
    assert tuple(regression.config.id2label[index] for index in range(199)) == names
    assert regression.config.chemlm_pretraining["descriptors"] == list(names)
    assert len(regression.config.chemlm_pretraining["norm_mean"]) == 199
    saved = load_file(out / "model" / "model.safetensors")
    assert {key.split(".")[0] for key in saved} == {"roberta", "classifier"}
    model, tokenizer = load_for_finetuning(CheckpointSpec("mtr", str(out / "model")), HeadSpec(2, "single_label_classification", {0: "a", 1: "b"}), 0)
    assert model.config.num_labels == 2
    for name, tensor in model.roberta.state_dict().items():
        torch.testing.assert_close(tensor, saved[f"roberta.{name}"])
    assert tokenizer.convert_ids_to_tokens(tokenizer("CCl")["input_ids"]) == ["<s>", "C", "Cl", "</s>"]
    result, _ = finetune_from(out / "model", tmp_path)
    assert len(result.history) == 1


def test_same_seed_same_pretraining(corpus_files, mlm_run, tmp_path):
    again, _ = run_pretrain(corpus_files, tmp_path)
    first, _ = mlm_run
    assert [record.train_loss for record in again.history] == [record.train_loss for record in first.history]
    assert [record.held_out_metric for record in again.history] == [record.held_out_metric for record in first.history]


CHILD = """
import sys
import torch
torch.set_num_threads(1)  # as the test process (one_torch_thread)
sys.path.insert(0, {tests!r})
from dataclasses import replace
from pathlib import Path
from test_pretraining import SPEC, run_pretrain
run_pretrain((Path({smiles!r}), Path({descriptors!r})), Path({out!r}), replace(SPEC, **{changes!r}))
"""


@pytest.mark.integration
@pytest.mark.parametrize("changes", [{"epochs": 8}, {"name": "tiny-mtr", "objective": "mtr", "tokenizer": "regex", "epochs": 8}])
def test_killed_pretraining_resumes_to_the_same_result(corpus_files, tmp_path, caplog, changes, one_torch_thread):
    spec = replace(SPEC, **changes)
    reference, _ = run_pretrain(corpus_files, tmp_path / "uninterrupted", spec)
    assert not (tmp_path / "uninterrupted" / "state").exists()  # removed once the outputs are written

    out = tmp_path / "killed"
    code = CHILD.format(tests=str(REPO / "tests"), smiles=str(corpus_files[0]), descriptors=str(corpus_files[1]), out=str(out), changes=changes)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO / "tests")
    state_file = out / "state" / "state.json"
    deadline = time.monotonic() + 300
    while not (state_file.is_file() and len(json.loads(state_file.read_text())["history"]) >= 2):
        assert child.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at = len(json.loads(state_file.read_text())["history"])
    assert 2 <= killed_at < spec.epochs and not (out / "model").exists()

    with caplog.at_level(logging.INFO, logger="chemlm.models.loop"):
        resumed, _ = run_pretrain(corpus_files, out, spec)
    assert f"resuming after epoch {killed_at}" in caplog.text
    assert f"epoch {killed_at}/" not in caplog.text.split("resuming")[1]  # finished epochs are not trained again
    assert [(r.train_loss, r.held_out_loss, r.held_out_metric) for r in resumed.history] == [
        (r.train_loss, r.held_out_loss, r.held_out_metric) for r in reference.history
    ]
    resumed_weights = load_file(out / "model" / "model.safetensors")
    for name, tensor in load_file(tmp_path / "uninterrupted" / "model" / "model.safetensors").items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=0, atol=0)
    assert not (out / "state").exists()


@pytest.mark.parametrize("objective", ["mlm", "mtr"])
def test_pretraining_out_of_memory_halves_the_batch_with_accumulation(corpus_files, tmp_path, monkeypatch, caplog, objective):
    """The loop's memory fallback serves pre-training too: batches of 16 run in parts of 8 and training goes on."""
    spec = replace(SPEC, epochs=2, objective=objective)
    simulate_gpu_memory_limit(monkeypatch, 8)
    with caplog.at_level(logging.WARNING, logger="chemlm.models.loop"):
        result, out = run_pretrain(corpus_files, tmp_path, spec)
    assert result.chunks == 2 and "out of GPU memory: each batch of 16 now runs in 2 parts" in caplog.text
    assert len(result.history) == 2 and (out / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("objective", ["mlm", "mtr"])
def test_pretraining_batch_parts_give_the_whole_batch_gradient(corpus_files, objective):
    """Masks are drawn once per batch, before it is split, so the parts' gradients add up to the whole batch's."""
    from chemlm.models import loop
    from chemlm.models.pretraining import DescriptorFile, DescriptorRegression, MaskedLanguageModelling, model_config

    smiles_csv, descriptors_npz = corpus_files
    corpus = pd.read_csv(smiles_csv)
    tokenizer = AutoTokenizer.from_pretrained(ARCHITECTURE)
    ids = tokenizer(corpus["smiles"].tolist())["input_ids"]
    if objective == "mlm":
        task = MaskedLanguageModelling(tokenizer, ids, ids[:8], 8, seed=0)
    else:
        rows = np.arange(len(ids))
        task = DescriptorRegression(DescriptorFile.load(descriptors_npz, len(ids)), ids, ids[:8], rows, rows[:8], tokenizer.pad_token_id, 8, torch.device("cpu"))
    torch.manual_seed(0)
    model = task.build(model_config(ARCHITECTURE, "small", tokenizer, "chemberta2")).eval()
    batch = task.build_batch(np.arange(24))
    whole = loop.backward(model, task, batch, 1, torch.device("cpu"))
    whole_gradient = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()
    model.zero_grad(set_to_none=True)
    parts = loop.backward(model, task, batch, 3, torch.device("cpu"))
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), whole_gradient, rtol=1e-4, atol=1e-6)


def test_pretraining_schedule_and_clipping_are_settings():
    """Pre-training defaults to RoBERTa's recipe (5% warm-up, linear decay, clipping at 1); fine-tuning to the study's
    (constant rate, no clipping); both are the same loop's settings."""
    from chemlm.models.finetuning import loop_settings as finetune_settings
    from chemlm.models.loop import learning_rate_factor
    from chemlm.models.pretraining import loop_settings as pretrain_settings

    pretraining = pretrain_settings(SPEC)
    assert (pretraining.max_grad_norm, pretraining.schedule, pretraining.warmup_fraction, pretraining.patience) == (1.0, "linear", 0.05, None)
    factors = [learning_rate_factor(pretraining, 100)(step) for step in range(100)]
    assert factors[0] == pytest.approx(0.2) and factors[4] == 1.0 and factors[52] == pytest.approx(48 / 95) and factors[-1] == pytest.approx(1 / 95)
    finetuning = finetune_settings(FINETUNE)
    assert (finetuning.max_grad_norm, finetuning.schedule, finetuning.warmup_fraction, finetuning.patience) == (None, "constant", 0.0, 1)
    assert {learning_rate_factor(finetuning, 100)(step) for step in range(100)} == {1.0}


def test_masking_rates_and_specials():
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 50, (400, 60))
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    input_ids[::2, 50:] = 1  # padding
    maskable = ~torch.isin(input_ids, torch.tensor([0, 1, 2]))
    replacements = torch.arange(5, 50)
    masked, labels = mask_tokens(input_ids, maskable, 4, replacements, generator)
    selected = labels != -100
    assert not (selected & ~maskable).any() and (labels[selected] == input_ids[selected]).all()
    assert selected.sum() / maskable.sum() == pytest.approx(0.15, abs=0.01)
    shares = [(masked[selected] == 4).float().mean(), (masked[selected] == input_ids[selected]).float().mean()]
    assert shares[0] == pytest.approx(0.8, abs=0.02) and shares[1] == pytest.approx(0.1, abs=0.02)
    assert (masked[~selected] == input_ids[~selected]).all()
    one_token = torch.tensor([[0, 7, 2]])
    _, labels = mask_tokens(one_token, one_token == 7, 4, replacements, generator)
    assert labels.tolist() == [[-100, 7, -100]]  # every sequence gets at least one target


def test_regex_tokenizer_keeps_atoms_whole_and_reloads(tmp_path):
    tokenizer = build_regex_tokenizer(["ClC(Br)[C@H]1CC1", "C%10CC%10", "c1ccccc1[N+](=O)[O-]"])
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("BrC[C@H](Cl)C%10CC%10")["input_ids"])
    assert tokens == ["<s>", "Br", "C", "[C@H]", "(", "Cl", ")", "C", "%10", "C", "C", "%10", "</s>"]
    assert tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]) == [0, 1, 2, 3, 4]
    assert tokenizer.convert_ids_to_tokens(tokenizer("C[Se]C")["input_ids"]) == ["<s>", "C", "<unk>", "C", "</s>"]
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert AutoTokenizer.from_pretrained(tmp_path)("BrC[C@H]Cl")["input_ids"] == tokenizer("BrC[C@H]Cl")["input_ids"]


def test_chemberta2_tokenizer_drops_characters_outside_its_vocabulary():
    """The known flaw the regex tokenizer is there to test against (see chemlm.models.tokenizers)."""
    tokenizer = AutoTokenizer.from_pretrained(ARCHITECTURE)
    assert tokenizer.convert_ids_to_tokens(tokenizer("ClC[C@H]Br")["input_ids"]) == ["[CLS]", "C", "C", "C", "B", "[SEP]"]


def test_pretrained_checkpoints_resolve_to_the_pretrain_folder():
    config = {
        "tasks": {"hiv": {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"}},
        "checkpoints": {"MLM": {"source": "pretrained:mlm"}},
        "pretrain": {"corpus": "corpus.txt", "models": {"mlm": {"objective": "mlm", "size": "small", "tokenizer": "regex"}}},
    }
    study = Study.from_config(config)
    assert study.checkpoints["MLM"].pretrained_name == "mlm" and not study.checkpoints["MLM"].is_scratch
    assert layout.checkpoint_to_load(study, "MLM").source == "results/pretrain/mlm-small/mlm/model"
    assert study.pretrained["mlm"] == PretrainSpec("mlm", "mlm", "small", "regex", epochs=10, batch_size=256,
                                                   learning_rate=5e-4, max_length=128)  # the schema's defaults
    config["checkpoints"]["MTR"] = {"source": "pretrained:mtr"}
    with pytest.raises(ConfigError, match=r"checkpoints.MTR.source': no model 'mtr' under pretrain.models"):
        Study.from_config(config)
    with pytest.raises(ConfigError, match="pretrained:<name>"):
        CheckpointSpec("X", "pretrained:")


def test_demo_scratch_model_has_the_pretrained_models_architecture():
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    sizes = {entry["size"] for entry in demo["pretrain"]["models"].values()}
    assert sizes == {"small"}
    # the same architecture; how its weights are drawn (initializer_range) is the scratch baseline's own
    overrides = dict(demo["checkpoints"]["scratch"]["architecture_overrides"])
    assert overrides.pop("initializer_range") == 0.15
    assert overrides == SIZE_PRESETS["small"]
