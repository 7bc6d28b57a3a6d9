"""Hyper-parameter search: trials known when the DAG is built, stable as their number grows, scored on validation
only (poisoned test labels change nothing), baselines searched the same way, and the whole thing through Snakemake."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from chemlm import layout
from chemlm.baselines import train_baseline
from chemlm.config import Study
from chemlm.fingerprints import write_ecfp4
from chemlm.models.finetuning import search_trial
from chemlm.search import Dimension, SearchSpace, TrialResult, select, select_trial
from helpers import demo_molecules, snakemake, tiny_config, write_fold_files
from test_baselines import parsable
from test_training import PARAMS, SCRATCH, TASKS
from workflow_jobs import by_rule, parse_dry_run

pytestmark = pytest.mark.integration


def search_config(trials: int) -> dict:
    config = tiny_config()
    del config["predict"]
    config["tasks"] = {"hiv": config["tasks"]["hiv"]}
    config["search"] = {"trials": trials, "space": {"learning_rate": [1e-4, 3e-3], "batch_size": [16, 32], "augment": [1, 3]}}
    config["evaluate"]["test_time_augment"] = 2
    return config


def test_trials_are_a_prefix_of_a_longer_search_and_within_the_space():
    space = SearchSpace((Dimension("learning_rate", "log", (1e-5, 1e-2)), Dimension("batch_size", "choice", (16, 32, 64))))
    four, nine = space.trials(4, seed=3), space.trials(9, seed=3)
    assert nine[:4] == four and space.trials(4, seed=4) != four
    assert all(1e-5 <= trial["learning_rate"] <= 1e-2 and trial["batch_size"] in (16, 32, 64) for trial in nine)
    logs = [math.log10(trial["learning_rate"]) for trial in space.trials(64, seed=0)]
    assert min(logs) < -4.5 and max(logs) > -2.5  # a log scale: every decade gets trials


def test_the_best_mean_over_seeds_wins_and_undefined_scores_lose():
    results = [TrialResult(0, 0, 0.70, 1, {}), TrialResult(0, 1, 0.80, 1, {}), TrialResult(1, 0, 0.74, 1, {}),
               TrialResult(1, 1, 0.77, 1, {}), TrialResult(2, 0, math.nan, 1, {}), TrialResult(2, 1, 0.99, 1, {})]
    best, means = select(results, maximise=True)
    assert best == 1 and means[0] == pytest.approx(0.75) and math.isnan(means[2])
    assert select(results[:4], maximise=False)[0] == 0  # lower RMSE-like scores win when minimising


def test_task_and_checkpoint_overrides_replace_the_global_space():
    config = search_config(3)
    config["checkpoints"]["tiny"]["search"] = {"trials": 5, "space": {"batch_size": [8]}}
    study = Study.from_config(config)
    trials = study.search_trials("hiv", "tiny")
    assert len(trials) == 5 and {trial["batch_size"] for trial in trials} == {8}
    params = study.trial_params("hiv", "tiny", 2)
    assert params.batch_size == 8 and params.learning_rate == trials[2]["learning_rate"] and params.max_epochs == 2


def test_poisoned_test_labels_change_no_trial_and_no_choice(tmp_path):
    """Every test label flipped: the trials' validation scores, and so the chosen trial, stay the same."""
    molecules = demo_molecules()
    test = np.arange(len(molecules)) % 5 == 1  # write_fold_files: the test fold
    poisoned = molecules.assign(HIV_active=np.where(test, 1 - molecules["HIV_active"], molecules["HIV_active"]))
    chosen = []
    for name, table in (("clean", molecules), ("poisoned", poisoned)):
        (tmp_path / name).mkdir()
        molecules_csv, split_csv = write_fold_files(table, tmp_path / name)
        results = []
        for trial, learning_rate in enumerate((3e-4, 3e-3)):
            params = replace(PARAMS, learning_rate=learning_rate, max_epochs=2)
            results.append(tmp_path / name / f"trial{trial}.json")
            search_trial(molecules_csv, split_csv, TASKS["binary"], SCRATCH, params, 0, trial, results[-1], tmp_path / name / "state")
        chosen.append(select_trial([str(path) for path in results], True, str(tmp_path / name / "best.json")))
    without_time = [{**best, "trials": [{**trial, "seconds": None} for trial in best["trials"]]} for best in chosen]
    assert without_time[0] == without_time[1] and chosen[0]["valid_metric"] > 0


def test_baseline_search_uses_validation_only(tmp_path):
    molecules = parsable(demo_molecules(150))
    test = np.arange(len(molecules)) % 5 == 1
    settings = []
    for name, table in (("clean", molecules), ("poisoned", molecules.assign(HIV_active=np.where(test, 1 - molecules["HIV_active"], molecules["HIV_active"])))):
        (tmp_path / name).mkdir()
        molecules_csv, split_csv = write_fold_files(table, tmp_path / name)
        write_ecfp4(molecules_csv, tmp_path / name / "ecfp4.npz")
        out = tmp_path / name
        train_baseline(molecules_csv, split_csv, out / "ecfp4.npz", TASKS["binary"], "ecfp4_rf", 0, 50, 2,
                       out / "predictions.csv", out / "calibration.json", out / "settings.json", search=(4, 0))
        settings.append(json.loads((out / "settings.json").read_text()))
    assert settings[0]["settings"] == settings[1]["settings"] and settings[0]["trial"] == settings[1]["trial"]
    assert [trial["valid_metric"] for trial in settings[0]["trials"]] == [trial["valid_metric"] for trial in settings[1]["trials"]]
    assert settings[0]["searched"] and len(settings[0]["trials"]) == 4
    assert {trial["params"]["max_features"] for trial in settings[0]["trials"]} <= {"log2", "sqrt"}


def test_the_baseline_search_fits_repeated_settings_once(tmp_path, monkeypatch):
    """The forest's space is choices only, so a Sobol draw repeats settings: the same seed gives the same forest, so
    a repeat takes the first fit's metric instead of fitting again. Regression forests search a larger share of bits."""
    from chemlm import baselines

    fitted_settings = []
    fit = baselines.fit_baseline
    monkeypatch.setattr(baselines, "fit_baseline", lambda *args: fitted_settings.append(args[-1]) or fit(*args))
    molecules = parsable(demo_molecules(150))
    molecules_csv, split_csv = write_fold_files(molecules, tmp_path)
    write_ecfp4(molecules_csv, tmp_path / "ecfp4.npz")
    baselines.train_baseline(molecules_csv, split_csv, tmp_path / "ecfp4.npz", TASKS["binary"], "ecfp4_rf", 0, 50, 2,
                             tmp_path / "predictions.csv", tmp_path / "calibration.json", tmp_path / "settings.json", search=(4, 0))
    trials = json.loads((tmp_path / "settings.json").read_text())["trials"]
    drawn = [json.dumps(trial["params"], sort_keys=True) for trial in trials]
    assert len(set(drawn)) < len(drawn)  # this draw repeats a setting
    assert len(fitted_settings) == len(set(drawn)) + 1  # each distinct setting once, then the chosen one for the test fold
    for trial in trials:
        first = trials[drawn.index(json.dumps(trial["params"], sort_keys=True))]
        assert trial["valid_metric"] == first["valid_metric"]
    regression_choices = baselines.SEARCH_SPACES["ecfp4_rf", False].dimensions[1].values
    assert 0.33 in regression_choices and 0.33 not in baselines.SEARCH_SPACES["ecfp4_rf", True].dimensions[1].values


def test_raising_the_number_of_trials_adds_only_the_new_trials(tmp_path):
    jobs = {}
    for trials in (2, 3):
        (tmp_path / f"t{trials}.yaml").write_text(yaml.safe_dump(search_config(trials)))
        run = snakemake(tmp_path, "-n", "--forceall", configfile=f"t{trials}.yaml")
        assert run.returncode == 0, run.stderr[-3000:]
        jobs[trials] = parse_dry_run(run.stdout + run.stderr)
    added = set(jobs[3]) - set(jobs[2])
    assert by_rule(jobs[3][key] for key in added) == {"search_trial": 1}
    assert {jobs[3][key].wildcard("trial") for key in added} == {"2"}
    assert by_rule(job for job in jobs[2].values() if job.rule == "search_trial") == {"search_trial": 2}


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("search")
    (workdir / "config.yaml").write_text(yaml.safe_dump(search_config(2)))
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


def test_the_chosen_trial_fine_tunes_every_seed(search_run):
    best = json.loads((search_run / layout.search_file("best.json", "hiv", "tiny", "scaffold")).read_text())
    assert best["selected_on"].startswith("the validation fold") and len(best["trials"]) == 2
    run = json.loads((search_run / layout.finetune_file("run.json", "hiv", "tiny", "scaffold", 0)).read_text())
    assert run["params"] == best["params"] and run["searched"]["trial"] == best["trial"]
    assert 1 < run["smiles_per_molecule"]["test"] <= 2  # test-time augmentation: 2 SMILES per molecule, averaged
    assert {trial["params"]["augment"] for trial in best["trials"]} <= {1, 3}
    variants = pd.read_csv(search_run / layout.data_file("variants.csv", "hiv"))
    assert variants.groupby("mol_id").size().max() == 3  # the most any trial or evaluation reads
    settings = json.loads((search_run / layout.baseline_file("settings.json", "hiv", "ecfp4_rf", "scaffold", 0)).read_text())
    assert settings["searched"] and len(settings["trials"]) == 2
    page = (search_run / layout.REPORT_HTML).read_text()
    assert '<section id="search">' in page and "Selection used the validation fold alone" in page
    assert "fine-tuned, settings searched" in page
    summary = pd.read_csv(search_run / layout.SUMMARY)
    assert {"tiny", "ecfp4_rf", "ecfp4_logreg"} <= set(summary["checkpoint"])


def test_more_trials_on_a_finished_search_run_only_the_new_trial(search_run):
    (search_run / "more.yaml").write_text(yaml.safe_dump(search_config(3)))
    run = snakemake(search_run, "-n", configfile="more.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    planned = parse_dry_run(run.stdout + run.stderr)
    trials = [job for job in planned.values() if job.rule == "search_trial"]
    assert [job.wildcard("trial") for job in trials] == ["2"]  # the existing trials stay as they are


def test_a_checkpoint_with_no_trials_keeps_its_configured_settings():
    config = search_config(3)
    config["checkpoints"]["other"] = dict(config["checkpoints"]["tiny"], search={"trials": 0})
    study = Study.from_config(config)
    assert study.searched("hiv", "tiny") and not study.searched("hiv", "other")
    jobs = [(rule, wildcards) for rule, wildcards in layout.workflow_jobs(study) if rule.startswith("search")]
    assert jobs and all(wildcards["checkpoint"] == "tiny" for _, wildcards in jobs)
    assert layout.search_file("best.json", "hiv", "other", "scaffold") not in layout.report_inputs(study)["search"]
