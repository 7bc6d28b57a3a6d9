"""The whole workflow through Snakemake on tiny data with a tiny model, every task type, on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from transformers import AutoModelForSequenceClassification

from helpers import REPO, tiny_scratch_entry

DATA = REPO / "tests" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--profile", str(REPO / "profiles" / "default")]


def tiny_config() -> dict:
    return {
        "tasks": {
            "hiv": {"source": str(DATA / "hiv_small.csv"), "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"},
            "activity": {"source": str(DATA / "hiv_small.csv"), "smiles_column": "smiles", "label_columns": ["activity"], "type": "multiclass"},
            "tox21": {
                "source": str(DATA / "tox21_sample.csv"),
                "smiles_column": "smiles",
                "id_column": "mol_id",
                "label_columns": ["NR-AR", "NR-AhR", "SR-ARE", "SR-p53"],
                "type": "multilabel",
            },
            "esol": {
                "source": str(DATA / "esol_sample.csv"),
                "smiles_column": "smiles",
                "label_columns": ["measured log solubility in mols per litre"],
                "type": "regression",
            },
        },
        "checkpoints": {"tiny": tiny_scratch_entry()},
        "split": {"methods": ["scaffold"]},
        "seeds": [0, 1],
        "finetune": {"learning_rate": 1e-3, "batch_size": 32, "max_epochs": 2, "patience": 2, "max_length": 96},
        "evaluate": {"bootstrap_samples": 50},
    }


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args],
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


def test_summary_has_every_task_with_its_metrics(finished_run):
    summary = pd.read_csv(finished_run / "results" / "summary.csv")
    assert set(summary["task"]) == {"hiv", "activity", "tox21", "esol"}
    assert (summary["n_seeds"] <= 2).all() and (summary["checkpoint"] == "tiny").all()
    metrics = {task: set(group["metric"]) for task, group in summary.groupby("task")}
    assert {"auroc", "auprc", "mcc@0.5", "tp@valid", "threshold@valid"} <= metrics["hiv"]
    assert {"accuracy", "macro_f1"} <= metrics["activity"]
    assert {"auroc", "auroc[NR-AR]", "auroc[SR-p53]"} <= metrics["tox21"]
    assert {"rmse", "mae", "r2", "pearson_r"} <= metrics["esol"]
    auroc = summary.set_index(["task", "metric"]).loc[("hiv", "auroc")]
    assert auroc["n_seeds"] == 2 and 0 <= auroc["mean"] <= 1
    per_seed = pd.read_csv(finished_run / "results" / "metrics.csv")
    assert set(per_seed["seed"]) == {0, 1}


def test_qc_lists_the_invalid_smiles(finished_run):
    qc = json.loads((finished_run / "results" / "hiv" / "data" / "qc.json").read_text())
    assert qc["rows"] == 600 and qc["invalid"] == 2 and qc["molecules"] == 598
    invalid = pd.read_csv(finished_run / "results" / "hiv" / "data" / "invalid.csv")
    assert invalid["row"].tolist() == [9, 86]  # the sample keeps two of the 7 SMILES RDKit rejects


def test_models_reload_and_predictions_are_probabilities(finished_run):
    run_dir = finished_run / "results" / "tox21" / "finetune" / "tiny" / "scaffold" / "seed1"
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    assert model.config.num_labels == 4 and model.config.problem_type == "multi_label_classification"
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert predictions.filter(like="p:").stack().between(0, 1).all()
    assert set(predictions["fold"]) == {"valid", "test"}


def test_every_step_logged_with_epoch_lines(finished_run):
    log = (finished_run / "logs" / "finetune" / "esol" / "tiny" / "scaffold" / "seed0.log").read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log and "restored epoch" in log
    for step in ("ingest", "featurize", "split", "evaluate"):
        assert any((finished_run / "logs" / step).rglob("*.log")), step


def test_rerun_does_nothing(finished_run):
    dry = snakemake(finished_run, "-n")
    assert dry.returncode == 0
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_bad_config_stops_with_one_line(tmp_path):
    config = tiny_config()
    config["finetune"]["batch_size"] = "big"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "-n")
    assert run.returncode != 0
    assert "Config error: config key 'finetune.batch_size': 'big' is not of type 'integer'" in run.stderr.splitlines()


def test_bad_input_fails_in_its_log_without_output(tmp_path):
    config = tiny_config()
    config["tasks"] = {"hiv": {**config["tasks"]["hiv"], "label_columns": ["HIV_activ"]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "results/hiv/data/table.csv")
    assert run.returncode != 0
    log = (tmp_path / "logs" / "ingest" / "hiv.log").read_text()
    assert log.strip().splitlines()[-1].startswith(f"ERROR: {DATA / 'hiv_small.csv'}: no column 'HIV_activ'")
    assert not (tmp_path / "results" / "hiv" / "data" / "table.csv").exists()
