"""Loading checkpoints: local folders, scratch, and clear errors instead of random weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

from chemlm.config import CheckpointSpec
from chemlm.models.checkpoints import CheckpointError, HeadSpec, load_for_finetuning
from helpers import ARCHITECTURE, REPO, TINY_ARCHITECTURE, tiny_scratch_entry

HEAD = HeadSpec(2, "single_label_classification", {0: "inactive", 1: "active"})


@pytest.fixture
def pretrained_folder(tmp_path):
    """A local 'pre-trained' masked-LM folder as save_pretrained writes it (tiny, random but saved)."""
    config = AutoConfig.from_pretrained(ARCHITECTURE)
    config.update(TINY_ARCHITECTURE)
    torch.manual_seed(7)
    model = AutoModelForMaskedLM.from_config(config)
    folder = tmp_path / "pretrained"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(ARCHITECTURE).save_pretrained(folder)
    return folder


def test_local_folder_loads_its_encoder_weights(pretrained_folder):
    spec = CheckpointSpec("local", str(pretrained_folder))
    model, tokenizer = load_for_finetuning(spec, HEAD, seed=0)
    saved = load_file(pretrained_folder / "model.safetensors")
    for name, tensor in model.roberta.state_dict().items():
        key = f"roberta.{name}"
        if key in saved:
            torch.testing.assert_close(tensor, saved[key])
    assert model.config.num_labels == 2 and model.config.id2label == {0: "inactive", 1: "active"}
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(ARCHITECTURE).get_vocab()


def test_scratch_uses_architecture_and_seed():
    spec = CheckpointSpec.from_config("scratch", tiny_scratch_entry())
    first, _ = load_for_finetuning(spec, HEAD, seed=1)
    again, _ = load_for_finetuning(spec, HEAD, seed=1)
    other, _ = load_for_finetuning(spec, HEAD, seed=2)
    assert first.config.hidden_size == 32 and first.config.vocab_size == 600
    weight = "roberta.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(first.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


@pytest.mark.parametrize("pretrained", [False, True])
def test_head_initializer_range_redraws_the_new_head_alone(pretrained, pretrained_folder):
    """The head's weights get the asked spread, biases zero; the encoder is the one without the setting."""
    spec = CheckpointSpec("local", str(pretrained_folder)) if pretrained else CheckpointSpec.from_config("scratch", tiny_scratch_entry())
    default, _ = load_for_finetuning(spec, HEAD, seed=3)
    wide, _ = load_for_finetuning(spec, HEAD, seed=3, head_initializer_range=0.5)
    for name, tensor in default.roberta.state_dict().items():
        torch.testing.assert_close(wide.roberta.state_dict()[name], tensor)
    for model, std in ((default, default.config.initializer_range), (wide, 0.5)):
        weight = model.classifier.dense.weight.detach()
        assert weight.std().item() == pytest.approx(std, rel=0.15)
        assert torch.count_nonzero(model.classifier.out_proj.bias) == 0
    assert default.config.initializer_range == 0.02


def test_folder_without_weights_is_an_error_naming_it(tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(ARCHITECTURE, folder)
    with pytest.raises(CheckpointError, match=r"checkpoint 'MLM' \(.*no-weights\): cannot be loaded: .*model.safetensors"):
        load_for_finetuning(CheckpointSpec("MLM", str(folder)), HEAD, seed=0)


def test_missing_encoder_weights_refused(pretrained_folder):
    weights = load_file(pretrained_folder / "model.safetensors")
    del weights["roberta.encoder.layer.1.output.dense.weight"]
    save_file(weights, pretrained_folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="refusing to fine-tune randomly initialised weights"):
        load_for_finetuning(CheckpointSpec("broken", str(pretrained_folder)), HEAD, seed=0)


def test_encoder_weight_of_wrong_shape_refused(pretrained_folder):
    # mismatched sizes are accepted only for the head (an MTR head of 199 outputs); never inside the encoder
    weights = load_file(pretrained_folder / "model.safetensors")
    weights["roberta.encoder.layer.0.output.dense.bias"] = torch.zeros(7)
    save_file(weights, pretrained_folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"wrong shape \(first: roberta.encoder.layer.0.output.dense.bias\)"):
        load_for_finetuning(CheckpointSpec("broken", str(pretrained_folder)), HEAD, seed=0)


@pytest.mark.parametrize("source", ["does/not/exist/here", "./nowhere"])
def test_path_that_does_not_exist(source):
    with pytest.raises(CheckpointError, match=f"checkpoint 'x' \\({source}\\): no such folder"):
        load_for_finetuning(CheckpointSpec("x", source), HEAD, seed=0)


def test_scratch_needs_an_architecture():
    with pytest.raises(ValueError, match="checkpoints.s.architecture"):
        CheckpointSpec("s", "scratch")


@pytest.mark.integration
def test_hub_id_without_network_says_how_to_use_a_local_folder():
    code = (
        "from chemlm.config import CheckpointSpec\n"
        "from chemlm.models.checkpoints import HeadSpec, load_for_finetuning, CheckpointError\n"
        "try:\n"
        "    load_for_finetuning(CheckpointSpec('MLM', 'DeepChem/ChemBERTa-77M-MLM'), HeadSpec(2, 'single_label_classification', {0: 'a', 1: 'b'}), 0)\n"
        "except CheckpointError as error:\n"
        "    print(error)\n"
    )
    # offline mode gives the same answer as an unreachable Hub, without waiting for network time-outs
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(REPO / ".pytest_cache" / "hf-empty")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    message = out.stdout.strip()
    assert message.startswith("checkpoint 'MLM' (DeepChem/ChemBERTa-77M-MLM): the Hugging Face Hub is unreachable")
    assert "checkpoints.MLM.source" in message and "\n" not in message


def hub_layout_folder(shared_dir, name: str, destination) -> dict[str, torch.Tensor]:
    """DeepChem/ChemBERTa-77M-<name> as it is on the Hub: its real config and tokenizer files (../shared/models) and
    weights written by torch.save as pytorch_model.bin, no safetensors. MLM keys are RobertaForMaskedLM's; MTR keys
    are those of DeepChem's RobertaForRegression (roberta.*, regression.dense.*, regression.out_proj.*, norm_mean,
    norm_std), a class transformers does not have. Returns the saved weights."""
    shutil.copytree(shared_dir / "models" / f"ChemBERTa-77M-{name}", destination)
    config = AutoConfig.from_pretrained(destination)
    torch.manual_seed(11)
    masked_lm = AutoModelForMaskedLM.from_config(config)
    weights = {key: value.clone() for key, value in masked_lm.state_dict().items()}
    # written by the transformers of 2022, whose checkpoints still held this buffer
    weights["roberta.embeddings.position_ids"] = torch.arange(config.max_position_embeddings).expand((1, -1))
    if name == "MTR":
        weights = {key: value for key, value in weights.items() if key.startswith("roberta.")}
        targets, hidden = config.num_labels, config.hidden_size
        weights |= {
            "regression.dense.weight": torch.randn(hidden, hidden), "regression.dense.bias": torch.randn(hidden),
            "regression.out_proj.weight": torch.randn(targets, hidden), "regression.out_proj.bias": torch.randn(targets),
            "norm_mean": torch.tensor(config.norm_mean), "norm_std": torch.tensor(config.norm_std),
        }
    torch.save(weights, destination / "pytorch_model.bin")
    assert not list(destination.glob("*.safetensors"))
    return weights


@pytest.mark.parametrize("name", ["MLM", "MTR"])
def test_chemberta2_checkpoints_as_on_the_hub_fine_tune_and_embed(shared_dir, tmp_path, name):
    from chemlm.models.embeddings import write_embeddings
    from chemlm.models.finetuning import finetune
    from helpers import demo_molecules, write_fold_files
    from test_training import PARAMS, TASKS

    folder = tmp_path / name
    saved = hub_layout_folder(shared_dir, name, folder)
    spec = CheckpointSpec(name, str(folder))
    model, tokenizer = load_for_finetuning(spec, HEAD, seed=0)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 3 and model.config.num_labels == 2
    encoder = model.roberta.state_dict()
    assert {f"roberta.{key}" for key in encoder} <= set(saved)
    for key, tensor in encoder.items():  # every encoder weight arrives unchanged
        torch.testing.assert_close(tensor, saved[f"roberta.{key}"], rtol=0, atol=0)
    assert tokenizer.convert_ids_to_tokens(tokenizer("CCO")["input_ids"]) == ["[CLS]", "C", "C", "O", "[SEP]"]

    molecules_csv, split_csv = write_fold_files(demo_molecules(80), tmp_path)
    out = tmp_path / "finetuned"
    params = PARAMS.__class__(**{**PARAMS.to_dict(), "betas": PARAMS.betas, "max_epochs": 1})
    result = finetune(molecules_csv, split_csv, TASKS["binary"], spec, params, 0, out / "model", out / "history.csv",
                      out / "predictions.csv", out / "run.json", out / "state", out / "calibration.json")
    assert len(result.history) == 1 and (out / "model" / "model.safetensors").is_file()
    write_embeddings(molecules_csv, split_csv, TASKS["binary"], spec, 0, out / "model", "mean", 32, 64, tmp_path / "zeroshot.npz", tmp_path / "finetuned.npz")
    for stage in ("zeroshot", "finetuned"):
        with np.load(tmp_path / f"{stage}.npz") as embeddings:
            assert embeddings["embedding"].shape == (16, 384)
