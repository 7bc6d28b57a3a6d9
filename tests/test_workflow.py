"""The whole workflow through Snakemake on tiny data with a tiny model, every task type, on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from transformers import AutoModelForSequenceClassification

from chemlm import layout
from chemlm.predict import ModelEnsemble
from helpers import DATA, REPO, snakemake, tiny_config, tiny_scratch_entry
from workflow_jobs import parse_dry_run

pytestmark = pytest.mark.integration

TASKS = ("hiv", "activity", "tox21", "esol")
MODELS = {"tiny", "ecfp4_rf", "ecfp4_logreg", "lgbm", "chemprop"}  # the checkpoint and every baseline


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


def test_summary_has_every_task_with_its_metrics(finished_run):
    summary = pd.read_csv(finished_run / layout.SUMMARY)
    assert set(summary["task"]) == {"hiv", "activity", "tox21", "esol"}
    assert (summary["n_instances"] <= 1).all() and set(summary["checkpoint"]) == MODELS
    metrics = {task: set(group["metric"]) for task, group in summary.groupby("task")}
    assert {"auroc", "auprc", "mcc@0.5", "tp@valid", "threshold@valid"} <= metrics["hiv"]
    assert {"accuracy", "macro_f1"} <= metrics["activity"]
    assert {"auroc", "auroc[NR-AR]", "auroc[SR-p53]"} <= metrics["tox21"]
    assert {"rmse", "mae", "r2", "pearson_r"} <= metrics["esol"]
    auroc = summary.set_index(["task", "checkpoint", "metric"]).loc[("hiv", "tiny", "auroc")]
    assert auroc["n_instances"] == 1 and 0 <= auroc["mean"] <= 1 and np.isnan(auroc["sd"])
    per_instance = pd.read_csv(finished_run / layout.PER_INSTANCE)
    assert set(per_instance["instance"]) == {"seed0"}


def test_baselines_are_rows_beside_the_checkpoint_with_its_prediction_format(finished_run):
    summary = pd.read_csv(finished_run / layout.SUMMARY)
    for task, metric in (("hiv", "auroc"), ("activity", "accuracy"), ("tox21", "auroc"), ("esol", "rmse")):
        rows = summary[(summary["task"] == task) & (summary["metric"] == metric)]
        assert set(rows["checkpoint"]) == MODELS and (rows["n_instances"] == 1).all(), task
    for task in TASKS:
        finetuned = pd.read_csv(finished_run / layout.finetune_file("predictions.csv", task, "tiny", "scaffold", 0), dtype={"mol_id": str})
        for baseline in ("ecfp4_rf", "ecfp4_logreg", "lgbm", "chemprop"):
            predictions = pd.read_csv(
                finished_run / layout.baseline_predictions(task, baseline, "scaffold", 0), dtype={"mol_id": str}
            )
            assert list(predictions.columns) == list(finetuned.columns), (task, baseline)
            pd.testing.assert_frame_equal(predictions.filter(regex="^(mol_id|fold|y:)"), finetuned.filter(regex="^(mol_id|fold|y:)"))


def test_embeddings_and_projections_before_and_after_fine_tuning(finished_run):
    run = {"checkpoint": "tiny", "split": "scaffold", "instance": 0}
    for task in TASKS:
        predictions = pd.read_csv(finished_run / layout.finetune_file("predictions.csv", task, **run), dtype={"mol_id": str})
        test_ids = predictions.loc[predictions["fold"] == "test", "mol_id"].tolist()
        for stage in ("zeroshot", "finetuned"):
            with np.load(finished_run / layout.embeddings(task, **run, stage=stage)) as data:
                assert data["mol_id"].tolist() == test_ids and data["embedding"].shape == (len(test_ids), 32), (task, stage)
        table = pd.read_csv(finished_run / layout.projection("csv", task, **run, method="pca"), dtype={"mol_id": str})
        assert table["stage"].value_counts().to_dict() == {"zeroshot": len(test_ids), "finetuned": len(test_ids)}
        assert (finished_run / layout.projection("png", task, **run, method="pca")).stat().st_size > 10_000
        separation = json.loads((finished_run / layout.separation(task, **run)).read_text())
        assert set(separation) == {"zeroshot", "finetuned", "pca_explained_variance"}
        assert separation["finetuned"]["probe_metric"] == {"esol": "r2", "activity": "accuracy"}.get(task, "auroc")
        if task == "hiv":
            assert set(table["outcome"]) <= {"TP", "FP", "TN", "FN"} and {"TN", "FP"} <= set(table["outcome"])
        else:
            assert table["outcome"].isna().all()


def test_libraries_are_scored_row_for_row_by_every_model(finished_run):
    rows = (Path(REPO) / "resources" / "demo" / "library.smi").read_text().splitlines()
    for model in MODELS:
        scored = pd.read_csv(finished_run / layout.library_predictions("hiv", "candidates", "scaffold", model),
                             dtype={"id": str}, keep_default_na=False, na_values=[""])
        assert scored["row"].tolist() == list(range(len(rows))), model
        assert scored.loc[scored["id"] == "CAND-broken", "valid"].tolist() == [False]
        assert scored.loc[scored["valid"], ["mean:HIV_active", "calibrated:HIV_active"]].notna().all().all()
        assert scored.loc[scored["valid"], "max_similarity"].between(0, 1).all()
        assert (finished_run / layout.prediction_figure("hiv", "scaffold", "candidates", model)).stat().st_size > 5_000
    qc = json.loads((finished_run / layout.library_qc("candidates")).read_text())
    assert qc["rows"] == len(rows) and qc["shards"] == 2 and qc["invalid"] >= 1
    first = pd.read_csv(finished_run / layout.shard_predictions("hiv", "candidates", "scaffold", "tiny", 1), dtype={"id": str})
    assert first["row"].tolist() == list(range(100, len(rows)))  # the second shard's rows, numbered in the library
    # The fine-tuned model scored through its int8 ONNX export (config predict.engine), checked on the test fold
    exported = finished_run / layout.exported_model("onnx-int8", "hiv", "tiny", "scaffold", 0)
    assert json.loads((exported / "check.json").read_text())["passed"]
    shard = pd.read_csv(finished_run / layout.library_shard_file("molecules.csv.gz", "candidates", 1), keep_default_na=False)
    by_torch = ModelEnsemble([finished_run / layout.finetune_file("model", "hiv", "tiny", "scaffold", 0)]).score(shard[shard["valid"]])
    difference = np.abs(first.loc[first["valid"], "mean:HIV_active"].to_numpy() - by_torch.mean[:, 0])
    assert 0 < difference.max() <= 0.01
    page = (finished_run / layout.REPORT_HTML).read_text()
    assert '<section id="predictions">' in page and f"{len(rows)} rows:" in page


def test_a_shard_that_failed_is_all_that_reruns(finished_run):
    """A shard's job failed: its scores are missing, and so is the merged file that waited for them. Asked for the
    merged scores, the next run scores that shard alone and merges; the other shard stays as it is. (A dry run
    without a target would plan nothing here: the report and the drawings made from the merged file are present.)"""
    merged = finished_run / layout.library_predictions("hiv", "candidates", "scaffold", "tiny")
    lost = [finished_run / layout.shard_predictions("hiv", "candidates", "scaffold", "tiny", 1), merged]
    for path in lost:
        path.rename(path.with_name(f"kept-{path.name}"))
    try:
        run = snakemake(finished_run, "-n", str(merged.relative_to(finished_run)))
    finally:
        for path in lost:
            path.with_name(f"kept-{path.name}").rename(path)
    assert run.returncode == 0, run.stderr[-4000:]
    planned = {str(job) for job in parse_dry_run(run.stdout + run.stderr).values()}
    assert planned == {
        "predict(checkpoint=tiny, library=candidates, shard=1, split=scaffold, task=hiv)",
        "merge_predictions(library=candidates, model=tiny, split=scaffold, task=hiv)",
    }


def test_calibration_and_uncertainty_of_the_test_fold(finished_run):
    calibration = pd.read_csv(finished_run / layout.report_figure("hiv", "scaffold", "calibration", "csv"))
    assert set(calibration["model"]) == MODELS and not (finished_run / layout.report_figure("esol", "scaffold", "calibration", "csv")).exists()
    for task in TASKS:
        uncertainty = pd.read_csv(finished_run / layout.report_figure(task, "scaffold", "uncertainty", "csv"))
        assert set(uncertainty["model"]) == MODELS and "ensemble sd" not in set(uncertainty["ordering"])  # one seed
        similarity = pd.read_csv(finished_run / layout.test_similarity(task, "scaffold", 0))
        assert similarity["max_similarity"].between(0, 1).all() and similarity["max_similarity"].lt(1).any()


def test_qc_lists_the_invalid_smiles(finished_run):
    qc = json.loads((finished_run / layout.data_file("qc.json", "hiv")).read_text())
    assert qc["rows"] == 600 and qc["invalid"] == 2 and qc["molecules"] == 598
    invalid = pd.read_csv(finished_run / layout.data_file("invalid.csv", "hiv"))
    assert invalid["row"].tolist() == [9, 86]  # the sample keeps two of the 7 SMILES RDKit rejects


def test_models_reload_and_predictions_are_probabilities(finished_run):
    run_dir = finished_run / layout.finetune_file("", "tox21", "tiny", "scaffold", 0)
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    assert model.config.num_labels == 4 and model.config.problem_type == "multi_label_classification"
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert predictions.filter(like="p:").stack().between(0, 1).all()
    assert set(predictions["fold"]) == {"valid", "test"}


def test_every_step_logged_with_epoch_lines(finished_run):
    log = (finished_run / layout.log("finetune", task="esol", checkpoint="tiny", split="scaffold", instance="seed0")).read_text()
    assert "epoch 1/2" in log and "epoch 2/2" in log and "restored epoch" in log
    for step in ("ingest", "featurize", "split", "evaluate"):
        assert any((finished_run / "logs" / step).rglob("*.log")), step


def test_report_and_snakemake_report(finished_run):
    page = (finished_run / layout.REPORT_HTML).read_text()
    for task in TASKS:
        assert f"{task} · scaffold ·" in page  # a column of the overview table
    assert "tiny" in page and "ecfp4_rf" in page and page.count('<img src="data:image/png;base64,') >= 2 * len(TASKS)
    assert "| model | kind |" in (finished_run / layout.REPORT_MARKDOWN).read_text()
    assert any((finished_run / "benchmarks" / "finetune").rglob("*.tsv"))
    built = snakemake(finished_run, "--report", "snakemake-report.html")
    assert built.returncode == 0, built.stderr[-2000:]
    snakemake_report = (finished_run / "snakemake-report.html").read_text()
    for category in ("Test-set curves", "Learning curves", "Embeddings"):
        assert f'"{category}"' in snakemake_report


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


def test_checkpoint_named_like_a_baseline_stops_with_one_line(tmp_path):
    config = tiny_config()
    config["checkpoints"] = {"ecfp4_rf": tiny_scratch_entry()}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "-n")
    assert run.returncode != 0
    expected = "Config error: config key 'checkpoints.ecfp4_rf': the name of a baseline (reserved: ecfp4_rf, ecfp4_logreg, lgbm, chemprop)"
    assert expected in run.stderr.splitlines()


def test_bad_input_fails_in_its_log_without_output(tmp_path):
    config = tiny_config()
    del config["predict"]
    config["tasks"] = {"hiv": {**config["tasks"]["hiv"], "label_columns": ["HIV_activ"]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, "results/hiv/data/table.csv")
    assert run.returncode != 0
    log = (tmp_path / "logs" / "ingest" / "hiv.log").read_text()
    assert log.strip().splitlines()[-1].startswith(
        f"ERROR in rule ingest (input {DATA / 'hiv_small.csv'}): {DATA / 'hiv_small.csv'}: no column 'HIV_activ'"
    )
    assert not (tmp_path / layout.data_file("table.csv", "hiv")).exists()


def test_wildcard_constraints_match_names_exactly(tmp_path):
    """A checkpoint named `v1.5` matches only itself: its dot is not a regular-expression wildcard."""
    config = tiny_config()
    del config["predict"]
    config["tasks"] = {"hiv": config["tasks"]["hiv"]}
    config["checkpoints"] = {"v1.5": tiny_scratch_entry()}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    exact = snakemake(tmp_path, "-n", layout.metrics("hiv", "v1.5", "scaffold", 0))
    assert exact.returncode == 0, exact.stderr[-2000:]
    lookalike = snakemake(tmp_path, "-n", layout.metrics("hiv", "v1x5", "scaffold", 0))
    assert lookalike.returncode != 0 and "MissingRuleException" in lookalike.stdout + lookalike.stderr


def test_an_sd_file_task_gives_the_molecules_of_the_same_table(tmp_path):
    """The same molecules and labels as an SD file (titles as ids, labels as properties) and as a CSV: the same
    molecules.csv, so every later step is the same."""
    from rdkit import Chem

    table = pd.read_csv(DATA / "hiv_small.csv")
    with Chem.SDWriter(str(tmp_path / "hiv.sdf")) as writer:
        for row, (smiles, label) in enumerate(zip(table["smiles"], table["HIV_active"])):
            molecule = Chem.MolFromSmiles(smiles)
            if molecule is None:
                continue  # the SMILES RDKit rejects have no connection table to write
            molecule.SetProp("_Name", str(row))
            molecule.SetProp("HIV_active", str(label))
            writer.write(molecule)
    config = tiny_config()
    del config["predict"]
    config["tasks"] = {
        "csv": config["tasks"]["hiv"],
        "sdf": {"source": str(tmp_path / "hiv.sdf"), "label_columns": ["HIV_active"], "type": "binary"},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, layout.data_file("molecules.csv", "csv"), layout.data_file("molecules.csv", "sdf"))
    assert run.returncode == 0, run.stderr[-3000:]
    from_csv = pd.read_csv(tmp_path / layout.data_file("molecules.csv", "csv"), dtype={"mol_id": str})
    from_sdf = pd.read_csv(tmp_path / layout.data_file("molecules.csv", "sdf"), dtype={"mol_id": str})
    pd.testing.assert_frame_equal(from_sdf, from_csv)
    assert "rule ingest (input" in (tmp_path / layout.log("ingest", task="sdf")).read_text().splitlines()[0]
