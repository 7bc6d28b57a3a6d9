"""The report: sections built from tiny synthetic results, the Markdown summary, and the page in headless Chromium
(its screenshot is kept in CHEMLM_SCREENSHOT_DIR when that is set)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snakemake.utils import validate

from chemlm.config import SCHEMA_PATH
from chemlm.evaluate import write_metrics, write_summary
from chemlm.io import write_csv, write_json
from chemlm.report.figures import scored_labels, write_task_figures
from chemlm.report.page import write_report
from chemlm.report.provenance import benchmark_table
from chemlm.tasks import TaskSpec, TaskType
from helpers import REPO

SEEDS = (0, 1, 2)
# How strongly each model's scores follow the labels: the random forest is the best model on purpose,
# as ECFP4 random forests are on the HIV scaffold split.
SIGNAL = {"MLM": 1.2, "MTR": 0.9, "ecfp4_rf": 2.2}
N_MOLECULES = {"valid": 60, "test": 80}


def study_config(baselines: list[str]) -> dict:
    config = {
        "tasks": {
            "hiv": {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"},
            "esol": {"source": "esol.csv", "smiles_column": "smiles", "label_columns": ["logS"], "type": "regression"},
        },
        "checkpoints": {"MLM": {"source": "DeepChem/ChemBERTa-77M-MLM"}, "MTR": {"source": "DeepChem/ChemBERTa-77M-MTR"}},
        "seeds": list(SEEDS),
        "baselines": baselines,
    }
    validate(config, str(SCHEMA_PATH))  # fills in the defaults, the report block among them
    return config


def predictions(task: TaskSpec, signal: float, rng: np.random.Generator) -> pd.DataFrame:
    folds = []
    for fold, n in N_MOLECULES.items():
        if task.type is TaskType.BINARY:
            truth = (rng.random(n) < 0.25).astype(float)
            predicted = 1 / (1 + np.exp(-(signal * (2 * truth - 1) + rng.normal(0, 1.5, n))))
        else:
            truth = rng.normal(-3, 2, n)
            predicted = truth + rng.normal(0, 2.5 / signal, n)
        label = task.label_columns[0]
        folds.append(pd.DataFrame({"mol_id": [f"{fold}{i}" for i in range(n)], "fold": fold, f"y:{label}": truth, f"p:{label}": predicted}))
    return pd.concat(folds, ignore_index=True)


def tiny_png(path: Path, seed: int) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().scatter(*np.random.default_rng(seed).normal(size=(2, 30)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=50)


def write_run(results: Path, task: TaskSpec, model: str, seed: int, is_baseline: bool, rng: np.random.Generator) -> Path:
    stage = "baselines" if is_baseline else "finetune"
    run_dir = results / task.name / stage / model / "scaffold" / f"seed{seed}"
    write_csv(predictions(task, SIGNAL[model], rng), run_dir / "predictions.csv")
    if not is_baseline:
        epochs = np.arange(1, 5)
        write_csv(pd.DataFrame({"epoch": epochs, "train_loss": 1 / epochs, "valid_loss": 1.2 / epochs + 0.05 * epochs,
                                "valid_metric": 0.6 + 0.05 * epochs, "seconds": 1.0}), run_dir / "history.csv")
        write_json({"device": "cpu", "epochs_run": 4, "best_epoch": 3, "early_stopping_on": "valid_metric", "seconds": 4.2}, run_dir / "run.json")
    metrics = results / task.name / "metrics" / model / "scaffold" / f"seed{seed}.json"
    write_metrics(run_dir / "predictions.csv", metrics, task, model, "scaffold", seed, bootstrap_samples=0)
    return metrics


def write_data_files(results: Path, task: TaskSpec) -> None:
    data = results / task.name / "data"
    label = task.label_columns[0]
    values = [0.0, 1.0, 0.0, 0.0] if task.type is TaskType.BINARY else [-2.1, -3.5, -0.4, -1.0]
    write_csv(pd.DataFrame({"mol_id": ["a", "b", "c", "d"], "smiles": ["C", "CC", "CCO", "c1ccccc1"], "scaffold": ["", "", "", "c1ccccc1"], label: values}), data / "molecules.csv")
    write_json({"rows": 6, "valid": 5, "invalid": 1, "empty": 0, "duplicate_rows_merged": 1, "molecules": 4, "invalid_examples": []}, data / "qc.json")
    write_csv(pd.DataFrame({"row": [4], "mol_id": ["4"], "smiles": ["C1CC"], "reason": ["unclosed ring"]}), data / "invalid.csv")
    write_csv(pd.DataFrame({"smiles": ["CC"], "mol_ids": ["b;e"], "rows": ["1;5"], "conflicting": [False]}), data / "duplicates.csv")
    balance = {"positives": 1, "negatives": 1, "missing": 0} if task.type is TaskType.BINARY else {"n": 2, "mean": -2.0, "sd": 1.0, "missing": 0}
    for seed in SEEDS:
        write_json({"molecules": 4, "sizes": {"train": 2, "valid": 1, "test": 1}, "fractions": {"train": 0.5, "valid": 0.25, "test": 0.25},
                    "scaffolds": {"train": 1, "valid": 1, "test": 1}, "scaffolds_in_several_folds": 0,
                    "labels": {label: {"train": balance, "valid": balance, "test": balance}}},
                   results / task.name / "splits" / "scaffold" / f"seed{seed}.json")


def build_study(workdir: Path, baselines: list[str], projections: bool) -> tuple[dict, Path]:
    """Synthetic results of two tasks (binary, regression), MLM and MTR over three seeds, and `baselines`
    (only ecfp4_rf has predictions); then the report's figures and the report itself. Returns config and results dir."""
    config = study_config(baselines)
    results = workdir / "results"
    rng = np.random.default_rng(7)
    metric_files = []
    for name, entry in config["tasks"].items():
        task = TaskSpec.from_config(name, entry)
        write_data_files(results, task)
        for model in [*config["checkpoints"], *baselines]:
            for seed in SEEDS:
                metric_files.append(write_run(results, task, model, seed, model in baselines, rng))
    if projections:
        for seed in SEEDS:
            folder = results / "hiv" / "projections" / "MLM" / "scaffold" / f"seed{seed}"
            tiny_png(folder / "pca.png", seed)
            write_json({"zeroshot": {"silhouette": 0.01, "knn": 0.61, "logreg": 0.64, "probe_metric": "auroc"},
                        "finetuned": {"silhouette": 0.2, "knn": 0.77, "logreg": None, "probe_metric": "auroc"},
                        "pca_explained_variance": {"zeroshot": [0.3, 0.1], "finetuned": [0.5, 0.2]}}, folder / "separation.json")
    write_summary(metric_files, results / "metrics.csv", results / "summary.csv")
    for task in config["tasks"]:
        figures = results / "report" / "figures" / task / "scaffold"
        write_task_figures(config, results / "summary.csv", results / "metrics.csv", task, "scaffold",
                           figures / "test_curves.png", figures / "learning_curves.png")
    benchmarks = workdir / "benchmarks"
    for rule, seconds in (("finetune/hiv/MLM/scaffold/seed0", 12.5), ("finetune/hiv/MLM/scaffold/seed1", 7.5), ("summarize", 0.4)):
        (benchmarks / f"{rule}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (benchmarks / f"{rule}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{int(seconds):02d}\t321.5\n")
    write_report(config, results / "summary.csv", results / "metrics.csv", benchmarks, REPO,
                 results / "report" / "index.html", results / "report" / "summary.md")
    return config, results


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[dict, Path]:
    return build_study(tmp_path_factory.mktemp("report"), ["ecfp4_rf"], projections=True)


def summary_stat(results: Path, model: str, metric: str = "auroc", task: str = "hiv") -> tuple[float, float]:
    summary = pd.read_csv(results / "summary.csv")
    row = summary[(summary["task"] == task) & (summary["checkpoint"] == model) & (summary["metric"] == metric)].iloc[0]
    return row["mean"], row["sd"]


def test_summary_markdown_has_the_overview_table_and_references(study):
    _, results = study
    markdown = (results / "report" / "summary.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| model"))
    assert header == "| model | kind | hiv · scaffold · AUROC ↑ | esol · scaffold · RMSE ↓ |"
    rf_mean, rf_sd = summary_stat(results, "ecfp4_rf")
    rf_row = next(line for line in markdown.splitlines() if line.startswith("| ecfp4_rf"))
    assert f"**{rf_mean:.3f} ± {rf_sd:.3f} (n=3)**" in rf_row  # the best AUROC, in bold
    assert "| MLM (published) | single run, reference | 0.793 | — |" in markdown
    assert "| MTR (published) | single run, reference | 0.733 | — |" in markdown


def test_statements_compare_with_published_runs_and_baselines_from_the_data(study):
    _, results = study
    markdown = (results / "report" / "summary.md").read_text()
    mlm_mean, mlm_sd = summary_stat(results, "MLM")
    rf_mean, rf_sd = summary_stat(results, "ecfp4_rf")
    assert f"MLM: {mlm_mean:.3f} ± {mlm_sd:.3f}, n=3 here against 0.793 published (single run), difference {mlm_mean - 0.793:+.3f}" in markdown
    assert (f"hiv / scaffold (AUROC): the best baseline, ecfp4_rf ({rf_mean:.3f} ± {rf_sd:.3f}, n=3), is better than "
            f"the best fine-tuned transformer, MLM ({mlm_mean:.3f} ± {mlm_sd:.3f}, n=3); difference {rf_mean - mlm_mean:+.3f}.") in markdown
    means = {model: summary_stat(results, model)[0] for model in ("MLM", "MTR", "ecfp4_rf")}
    above = [f"{model} ({mean:.3f})" for model, mean in means.items() if mean > 0.793]
    assert above, "the synthetic random forest should beat the published runs"
    assert f"Models here that score better than the best published run (MLM 0.793): {', '.join(above)}." in markdown
    # RMSE: lower is better, and the random forest's predictions are the closest.
    assert "esol / scaffold (RMSE): the best baseline, ecfp4_rf" in markdown and "is better than the best fine-tuned" in markdown


def test_paired_differences_are_per_seed(study):
    _, results = study
    per_seed = pd.read_csv(results / "metrics.csv")
    auroc = per_seed[(per_seed["task"] == "hiv") & (per_seed["metric"] == "auroc")].pivot(index="seed", columns="checkpoint", values="value")
    differences = auroc["MLM"] - auroc["MTR"]
    markdown = (results / "report" / "summary.md").read_text()
    for seed, difference in differences.items():
        assert f"| {seed} | {auroc['MLM'][seed]:.3f} | {auroc['MTR'][seed]:.3f} | {difference:+.3f} |" in markdown
    assert f"MLM − MTR (AUROC): mean {differences.mean():+.3f}, sd {differences.std(ddof=1):.3f} over 3 seeds" in markdown


def test_page_has_every_section_and_embeds_every_image(study):
    _, results = study
    page = (results / "report" / "index.html").read_text()
    for anchor in ("overview", "paired", "curves", "learning", "embeddings", "qc", "splits", "provenance"):
        assert f'<section id="{anchor}">' in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 2 * 2 + 1  # curves and learning curves of both tasks, one projection
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r'(?:src|href)="(?!data:|#)', page)  # nothing outside the file
    assert "silhouette" in page and "0.010 → 0.200" in page and "— →" not in page and "0.770" in page
    assert "40.0% → 70.0%" in page  # PCA variance explained by two components
    assert "unclosed ring" in page and "1/2 positive (50.0%)" in page


def test_provenance_sums_benchmarks_per_rule(study):
    config, results = study
    table = benchmark_table(results.parent / "benchmarks")
    assert table.rows[0] == ["finetune", "2", "20.0", "10.0", "12.5", "322"]
    assert table.rows[-1][:3] == ["all rules", "3", "20.4"]
    page = (results / "report" / "index.html").read_text()
    assert "ChemBERTa-77M-MLM" in page and "git commit:" in page and "scikit-learn" in page


def test_missing_optional_inputs_are_stated(tmp_path):
    config, results = build_study(tmp_path, [], projections=False)
    page = (results / "report" / "index.html").read_text()
    assert "No embedding projections in these results" in page
    assert "hiv / scaffold (AUROC): best model MLM" in page and "no baseline results to compare with" in page
    config["report"]["paired"] = ["MLM", "ChemBERTa-big"]
    write_report(config, results / "summary.csv", results / "metrics.csv", tmp_path / "no-benchmarks", REPO,
                 results / "report" / "index.html", results / "report" / "summary.md")
    page = (results / "report" / "index.html").read_text()
    assert "MLM and ChemBERTa-big did not both run on a common seed here" in page
    assert "No benchmark files under" in page
    config["report"]["paired"] = None
    write_report(config, results / "summary.csv", results / "metrics.csv", tmp_path / "no-benchmarks", REPO,
                 results / "report" / "index.html", results / "report" / "summary.md")
    assert "No checkpoints to pair (config key report.paired is null)." in (results / "report" / "index.html").read_text()


def test_scores_pool_labels_and_classes():
    multilabel = TaskSpec("tox", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
    table = pd.DataFrame({"fold": ["valid", "test", "test"], "y:a": [1, 1, np.nan], "y:b": [0, 0, 1],
                          "p:a": [0.1, 0.9, 0.5], "p:b": [0.2, 0.3, 0.8]})
    truth, scores = scored_labels(table, multilabel)
    assert truth.tolist() == [1, 0, 1] and scores.tolist() == [0.9, 0.3, 0.8]  # the missing label is left out
    multiclass = TaskSpec("act", "-", "smiles", ("activity",), TaskType.MULTICLASS)
    table = pd.DataFrame({"fold": ["test", "test"], "y:activity": ["CI", "CA"], "p:CI": [0.7, 0.2], "p:CA": [0.3, 0.8]})
    truth, scores = scored_labels(table, multiclass)
    assert truth.tolist() == [1, 0, 0, 1] and scores.tolist() == [0.7, 0.3, 0.2, 0.8]


# ---------------------------------------------------------------------------------------------------
# The page in a real browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
# Runs first in the page: collects errors and console errors, and after loading writes what it found into
# the DOM, which --dump-dom then prints.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || ('failed to load ' + (e.target.tagName || '?')))), true);
const consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); consoleError(...args); };
window.addEventListener('load', () => {
  const images = [...document.images];
  const overview = document.querySelector('#overview table.overview');
  const probe = document.createElement('pre');
  probe.id = 'probe';
  probe.textContent = JSON.stringify({
    images: images.length,
    loaded: images.filter(image => image.complete && image.naturalWidth > 0).length,
    overview_rows: overview ? overview.tBodies[0].rows.length : 0,
    errors: window.__errors,
  });
  document.body.appendChild(probe);
});
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: `make system-packages` installs it"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


def test_page_renders_in_chromium_without_errors(study, tmp_path):
    _, results = study
    page = (results / "report" / "index.html").read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))

    opened = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), profile=tmp_path / "profile-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', opened.stdout)
    assert found, opened.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert probe["errors"] == []
    assert probe["images"] == 5 and probe["loaded"] == 5
    assert probe["overview_rows"] == 3 + 2  # MLM, MTR, ecfp4_rf and the two published references
    console_errors = [line for line in opened.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "ERROR" in line)]
    assert console_errors == []

    screenshot = tmp_path / "report.png"
    shot = chromium("--window-size=1400,3000", f"--screenshot={screenshot}", (results / "report" / "index.html").as_uri(),
                    profile=tmp_path / "profile-shot")
    assert screenshot.is_file() and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
    if os.environ.get("CHEMLM_SCREENSHOT_DIR"):
        target = Path(os.environ["CHEMLM_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / "report.png")
