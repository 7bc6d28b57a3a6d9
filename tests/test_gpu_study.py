"""bench/gpu_study.py, the one-command GPU study, at CPU size: it must work before it spends a GPU lease."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chemlm import layout
from helpers import DATA, REPO

pytestmark = pytest.mark.integration

SCRIPT = REPO / "bench" / "gpu_study.py"


def test_prepare_and_run_at_cpu_size(tmp_path):
    work = tmp_path / "work"
    prepare = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(work), "prepare", "--hiv", str(DATA / "hiv_small.csv"),
         "--corpus", str(REPO / "resources" / "demo" / "pretrain_corpus.txt.gz"), "--corpus-molecules", "300"],
        capture_output=True, text=True, timeout=600,
    )
    assert prepare.returncode == 0, prepare.stderr[-3000:]
    assert "corpus 300 (HIV molecules removed:" in prepare.stdout
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(work), "run", "--size", "small", "--pretrain-epochs", "1",
         "--max-epochs", "1", "--parallel", "2", "--json", str(tmp_path / "result.json")],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert set(result["test_auroc"]) == {"MLM", "MTR", "scratch"}
    assert all(stat["n_instances"] == 3 and 0 <= stat["mean"] <= 1 for stat in result["test_auroc"].values())
    assert set(result["epochs_run"].values()) == {1} and len(result["epochs_run"]) == 9
    assert {"mtr_descriptors_s", "pretraining_s", "finetuning_s"} <= set(result["stages"])
    assert (work / layout.pretrain_file("model", "mtr", "small", "mtr") / "model.safetensors").is_file()
