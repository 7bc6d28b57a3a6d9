"""Pre-training through Snakemake: the corpus loses every molecule of the task, MTR pre-trains, a `pretrained:<name>`
checkpoint fine-tunes the result, and a change of pre-training settings reruns only what depends on them."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
import yaml

from helpers import DATA, REPO, snakemake, study_config
from workflow_jobs import parse_dry_run

pytestmark = pytest.mark.integration

MODEL_DIR = "results/pretrain/mtr-small/mtr"
TARGETS = [f"{MODEL_DIR}/history.csv", "results/hiv/metrics/MTR/scaffold/seed0.json"]


def pretrain_config(corpus: str) -> dict:
    config = study_config()
    config["checkpoints"] = {"MTR": {"source": "pretrained:mtr"}}
    config["baselines"] = []
    config["pretrain"] = {
        "corpus": corpus,
        "holdout_fraction": 0.2,
        "models": {
            "mtr": {"objective": "mtr", "size": "small", "tokenizer": "regex", "epochs": 1, "batch_size": 32,
                    "learning_rate": 1.0e-3, "max_length": 96},
        },
    }
    return config


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory):
    """The corpus holds every molecule of the task (so they must go) and 200 others."""
    workdir = tmp_path_factory.mktemp("pretrain_workflow")
    task_smiles = pd.read_csv(DATA / "hiv_small.csv")["smiles"].tolist()
    with gzip.open(REPO / "resources" / "demo" / "pretrain_corpus.txt.gz", "rt") as handle:
        others = [next(handle).strip() for _ in range(200)]
    (workdir / "corpus.txt").write_text("\n".join(task_smiles + others) + "\n")
    (workdir / "config.yaml").write_text(yaml.safe_dump(pretrain_config(str(workdir / "corpus.txt"))))
    run = snakemake(workdir, *TARGETS)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


def test_task_molecules_are_not_in_the_corpus(pretrain_run):
    molecules = pd.read_csv(pretrain_run / "results/hiv/data/molecules.csv", dtype={"mol_id": str})
    corpus = pd.read_csv(pretrain_run / "results/pretrain/corpus/smiles.csv")
    qc = json.loads((pretrain_run / "results/pretrain/corpus/qc.json").read_text())
    assert qc["task_molecules_removed"] == qc["task_molecules"] == len(molecules) > 0  # every fold, not only test
    assert not set(molecules["smiles"]) & set(corpus["smiles"])
    assert qc["invalid"] == 2 and qc["molecules"] == len(corpus) == 200 - qc["duplicates"]


def test_pretrained_checkpoint_fine_tunes_the_pretrain_folder(pretrain_run):
    run = json.loads((pretrain_run / "results/hiv/finetune/MTR/scaffold/seed0/run.json").read_text())
    assert run["checkpoint"]["source"] == f"{MODEL_DIR}/model"
    log = (pretrain_run / "logs/pretrain/mtr-small/mtr.log").read_text()
    assert "epoch 1/1 train_loss" in log and "holdout_r2" in log
    descriptors = json.loads((pretrain_run / "results/pretrain/corpus/descriptors.json").read_text())
    assert descriptors["descriptors"] == 199 and descriptors["molecules"] == json.loads(
        (pretrain_run / "results/pretrain/corpus/qc.json").read_text())["molecules"]


def test_changed_pretraining_reruns_its_model_and_fine_tunes_only(pretrain_run):
    config = pretrain_config(str(pretrain_run / "corpus.txt"))
    config["pretrain"]["models"]["mtr"]["epochs"] = 2
    (pretrain_run / "more_epochs.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(pretrain_run, "-n", *TARGETS, configfile="more_epochs.yaml")
    assert run.returncode == 0, run.stderr[-4000:]
    assert {job.rule for job in parse_dry_run(run.stdout + run.stderr).values()} == {"pretrain", "finetune", "evaluate"}


def test_unknown_pretrained_model_stops_with_one_line(pretrain_run):
    config = pretrain_config(str(pretrain_run / "corpus.txt"))
    config["checkpoints"]["MLM"] = {"source": "pretrained:mlm"}
    (pretrain_run / "unknown.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(pretrain_run, "-n", configfile="unknown.yaml")
    assert run.returncode != 0
    assert "Config error: config key 'checkpoints.MLM.source': no model 'mlm' under pretrain.models" in run.stderr.splitlines()
