"""Interrupted and memory-starved fine-tuning through the one training loop: resume after SIGKILL, and gradient
accumulation after OOM. (Pre-training runs through the same loop: tests/test_pretraining.py does the same for it.)"""

from __future__ import annotations

import json
import logging
import os
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

from chemlm.models import finetuning, loop
from chemlm.models.batching import tokenize
from chemlm.models.checkpoints import load_for_finetuning
from chemlm.models.finetuning import EncodedFold, TaskObjective, finetune
from chemlm.models.labels import LabelEncoding
from helpers import REPO, demo_molecules, simulate_gpu_memory_limit, write_fold_files
from test_training import PARAMS, SCRATCH, TASKS

RESUMABLE = replace(PARAMS, max_epochs=8, patience=8)


def outputs(out: Path) -> dict:
    return {name: out / name for name in ("model", "history.csv", "predictions.csv", "run.json", "state", "calibration.json")}


def run_in_process(molecules_csv: Path, split_csv: Path, out: Path):
    paths = outputs(out)
    return finetune(
        molecules_csv, split_csv, TASKS["binary"], SCRATCH, RESUMABLE, 0,
        paths["model"], paths["history.csv"], paths["predictions.csv"], paths["run.json"], paths["state"], paths["calibration.json"],
    )


CHILD = """
import sys
import torch
torch.set_num_threads(1)  # as the test process (one_torch_thread)
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_resume import run_in_process
run_in_process(Path({molecules!r}), Path({split!r}), Path({out!r}))
"""


@pytest.mark.integration
def test_killed_run_resumes_to_the_same_result(tmp_path, caplog, one_torch_thread):
    molecules_csv, split_csv = write_fold_files(demo_molecules(), tmp_path)
    reference = run_in_process(molecules_csv, split_csv, tmp_path / "uninterrupted")
    assert not (tmp_path / "uninterrupted" / "state").exists()  # removed once the outputs are written

    out = tmp_path / "killed"
    code = CHILD.format(tests=str(REPO / "tests"), molecules=str(molecules_csv), split=str(split_csv), out=str(out))
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO / "tests")
    state_file = out / "state" / "state.json"
    deadline = time.monotonic() + 300
    while not (state_file.is_file() and json.loads(state_file.read_text())["epoch"] >= 2):
        assert child.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at = json.loads(state_file.read_text())["epoch"]
    assert 2 <= killed_at < RESUMABLE.max_epochs
    assert not (out / "predictions.csv").exists()

    with caplog.at_level(logging.INFO, logger="chemlm.models.loop"):
        resumed = run_in_process(molecules_csv, split_csv, out)
    assert f"resuming after epoch {killed_at}" in caplog.text
    assert f"epoch {killed_at}/" not in caplog.text.split("resuming")[1]  # finished epochs are not trained again
    assert resumed.best_epoch == reference.best_epoch
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), pd.read_csv(tmp_path / "uninterrupted" / "predictions.csv"))
    history = pd.read_csv(out / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, pd.read_csv(tmp_path / "uninterrupted" / "history.csv").drop(columns="seconds"))


def test_state_of_other_settings_is_not_resumed(tmp_path, caplog):
    molecules_csv, split_csv = write_fold_files(demo_molecules(), tmp_path)
    paths = outputs(tmp_path / "run")
    fingerprint = finetuning.run_fingerprint(molecules_csv, split_csv, TASKS["binary"], SCRATCH, RESUMABLE, 0)
    other = finetuning.run_fingerprint(molecules_csv, split_csv, TASKS["binary"], SCRATCH, replace(RESUMABLE, learning_rate=1e-2), 0)
    assert fingerprint != other
    paths["state"].mkdir(parents=True)
    (paths["state"] / "state.json").write_text(json.dumps({"fingerprint": other, "epoch": 5}))
    with caplog.at_level(logging.INFO, logger="chemlm.models.loop"):
        state = run_in_process(molecules_csv, split_csv, tmp_path / "run")
    assert "ignoring saved state" in caplog.text and "resuming" not in caplog.text
    assert [record.epoch for record in state.history] == list(range(1, 9))


def small_objective():
    molecules = demo_molecules(n=40)
    encoding = LabelEncoding.fit(TASKS["binary"], molecules, np.ones(len(molecules), bool))
    model, tokenizer = load_for_finetuning(SCRATCH, encoding.head(), seed=0)
    ids, _ = tokenize(tokenizer, molecules["smiles"].tolist(), 64)
    fold = EncodedFold(molecules["mol_id"].to_numpy(), ids, encoding.targets(molecules))
    objective = TaskObjective({"train": fold, "valid": fold}, encoding, PARAMS, tokenizer.pad_token_id, torch.device("cpu"))
    return model, objective, fold


def gradients(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def test_accumulated_chunks_give_the_whole_batch_gradient():
    model, objective, fold = small_objective()
    model.eval()  # no dropout: the two passes see the same network
    batch = objective.build_batch(np.arange(len(fold.input_ids)))
    whole = loop.backward(model, objective, batch, 1, torch.device("cpu"))
    whole_grad = gradients(model).clone()
    model.zero_grad(set_to_none=True)
    parts = loop.backward(model, objective, batch, 3, torch.device("cpu"))
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gradients(model), whole_grad, rtol=1e-4, atol=1e-6)


def test_out_of_memory_halves_the_batch_with_accumulation(tmp_path, monkeypatch, caplog):
    """A forward pass over more than 8 molecules 'runs out of memory': training carries on in parts."""
    simulate_gpu_memory_limit(monkeypatch, 8)
    molecules_csv, split_csv = write_fold_files(demo_molecules(), tmp_path)
    with caplog.at_level(logging.WARNING, logger="chemlm.models.loop"):
        state = run_in_process(molecules_csv, split_csv, tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["gradient_accumulation_parts"] == 2 == state.chunks  # batches of 16 in 2 parts of 8
    assert run["params"]["batch_size"] == 16  # the effective batch is unchanged
    assert "out of GPU memory: each batch of 16 now runs in 2 parts" in caplog.text
    assert len(state.history) == RESUMABLE.max_epochs


def test_gpu_generator_states_are_saved_and_restored(monkeypatch):
    """A resumed GPU run draws the same dropout masks: every GPU's generator state travels with the CPU's."""
    gpu_states = [torch.tensor([1, 2, 3], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: gpu_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    saved = loop.generator_states(torch.device("cuda"))
    assert saved["cuda_rng"] is gpu_states and torch.equal(saved["torch_rng"], torch.get_rng_state())
    assert "cuda_rng" not in loop.generator_states(torch.device("cpu"))
    loop.restore_generator_states(saved)
    assert restored == [gpu_states]
