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
from chemlm import layout
from chemlm.config import ConfigError, Study
from chemlm.evaluate import evaluate_predictions, write_metrics, write_summary
from chemlm.io import InputError, write_csv, write_json
from chemlm.calibration import fit_predictions
from chemlm.comparison import compare_methods, p_text
from chemlm.report.calibration import write_calibration_report
from chemlm.report.comparison import write_study_comparison
from chemlm.report.figures import ClassificationCurves, scored_labels, write_task_figures
from chemlm.report.uncertainty import write_uncertainty_report
from chemlm.report.page import write_report
from chemlm.report.provenance import benchmark_table
from chemlm.report.results import DeclaredInputs
from chemlm.tasks import TaskSpec, TaskType
from helpers import REPO

SEEDS = (0, 1, 2)
# How strongly each model's scores follow the labels: the random forest is the best model on purpose,
# as ECFP4 random forests are on the HIV scaffold split.
SIGNAL = {"MLM": 1.2, "MTR": 0.9, "ecfp4_rf": 2.2}
N_MOLECULES = {"valid": 60, "test": 80}


def study_config(baselines: list[str], seeds: tuple[int, ...] = SEEDS) -> dict:
    config = {
        "tasks": {
            "hiv": {"source": "hiv.csv", "smiles_column": "smiles", "label_columns": ["HIV_active"], "type": "binary"},
            "esol": {"source": "esol.csv", "smiles_column": "smiles", "label_columns": ["logS"], "type": "regression"},
        },
        "checkpoints": {"MLM": {"source": "DeepChem/ChemBERTa-77M-MLM"}, "MTR": {"source": "DeepChem/ChemBERTa-77M-MTR"}},
        "seeds": list(seeds),
        "baselines": baselines,
    }
    return config


def predictions(task: TaskSpec, signal: float, rng: np.random.Generator) -> pd.DataFrame:
    """Signal 0: a model that has not learned, the same probability for every molecule but for float noise."""
    folds = []
    for fold, n in N_MOLECULES.items():
        if task.type is TaskType.BINARY and signal == 0:
            truth = (rng.random(n) < 0.25).astype(float)
            predicted = 0.278 + rng.normal(0, 1e-5, n)
        elif task.type is TaskType.BINARY:
            truth = (rng.random(n) < 0.25).astype(float)
            predicted = 1 / (1 + np.exp(-(signal * (2 * truth - 1) + rng.normal(0, 1.5, n))))
        else:
            truth = rng.normal(-3, 2, n)
            predicted = truth + rng.normal(0, 2.5 / signal, n) if signal else np.full(n, -3.0) + rng.normal(0, 1e-4, n)
        label = task.label_columns[0]
        folds.append(pd.DataFrame({"mol_id": [f"{fold}{i}" for i in range(n)], "fold": fold, f"y:{label}": truth, f"p:{label}": predicted}))
    return pd.concat(folds, ignore_index=True)


def tiny_png(path: Path, seed: int) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 2))
    figure.subplots().scatter(*np.random.default_rng(seed).normal(size=(2, 30)))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=50)


def write_run(results: Path, task: TaskSpec, model: str, seed: int, is_baseline: bool, rng: np.random.Generator,
              signal: float) -> Path:
    stage = "baselines" if is_baseline else "finetune"
    run_dir = results / task.name / stage / model / "scaffold" / f"seed{seed}"
    table = predictions(task, signal, rng)
    write_csv(table, run_dir / "predictions.csv")
    write_json(fit_predictions(table, task), run_dir / "calibration.json")
    if not is_baseline:
        epochs = np.arange(1, 5)
        write_csv(pd.DataFrame({"epoch": epochs, "train_loss": 1 / epochs, "valid_loss": 1.2 / epochs + 0.05 * epochs,
                                "valid_metric": 0.6 + 0.05 * epochs, "seconds": 1.0}), run_dir / "history.csv")
        write_json({"device": "cpu", "epochs_run": 4, "best_epoch": 3, "early_stopping_on": "valid_metric", "seconds": 4.2}, run_dir / "run.json")
    metrics = results / task.name / "metrics" / model / "scaffold" / f"seed{seed}.json"
    write_metrics(run_dir / "predictions.csv", metrics, task, model, "scaffold", f"seed{seed}", seed, bootstrap_samples=0)
    return metrics


def write_data_files(results: Path, task: TaskSpec, seeds: tuple[int, ...]) -> None:
    data = results / task.name / "data"
    label = task.label_columns[0]
    values = [0.0, 1.0, 0.0, 0.0] if task.type is TaskType.BINARY else [-2.1, -3.5, -0.4, -1.0]
    write_csv(pd.DataFrame({"mol_id": ["a", "b", "c", "d"], "smiles": ["C", "CC", "CCO", "c1ccccc1"], "scaffold": ["", "", "", "c1ccccc1"], label: values}), data / "molecules.csv")
    write_json({"rows": 6, "valid": 5, "invalid": 1, "empty": 0, "duplicate_rows_merged": 1, "molecules": 4, "invalid_examples": []}, data / "qc.json")
    write_csv(pd.DataFrame({"row": [4], "mol_id": ["4"], "smiles": ["C1CC"], "reason": ["unclosed ring"]}), data / "invalid.csv")
    write_csv(pd.DataFrame({"smiles": ["CC"], "mol_ids": ["b;e"], "rows": ["1;5"], "conflicting": [False]}), data / "duplicates.csv")
    balance = {"positives": 1, "negatives": 1, "missing": 0} if task.type is TaskType.BINARY else {"n": 2, "mean": -2.0, "sd": 1.0, "missing": 0}
    for seed in seeds:
        write_json({"molecules": 4, "sizes": {"train": 2, "valid": 1, "test": 1}, "fractions": {"train": 0.5, "valid": 0.25, "test": 0.25},
                    "scaffolds": {"train": 1, "valid": 1, "test": 1}, "scaffolds_in_several_folds": 0,
                    "labels": {label: {"train": balance, "valid": balance, "test": balance}}},
                   results / task.name / "splits" / "scaffold" / f"seed{seed}.json")


def declared(config: dict) -> list[str]:
    return [path for paths in layout.report_inputs(Study.from_config(config)).values() for path in paths]


def build_report(config: dict, workdir: Path) -> None:
    write_report(config, declared(config), REPO, workdir / layout.REPORT_HTML, workdir / layout.REPORT_MARKDOWN, root=workdir)


def build_study(workdir: Path, baselines: list[str], projections: bool, seeds: tuple[int, ...] = SEEDS,
                signals: dict[str, float] | None = None) -> tuple[dict, Path]:
    """Synthetic results of two tasks (binary, regression), MLM and MTR over three seeds, and `baselines`
    (only ecfp4_rf has predictions); then the report's figures and the report itself. Returns config and results dir."""
    signals = {**SIGNAL, **(signals or {})}
    config = study_config(baselines, seeds)
    study = Study.from_config(config)
    results = workdir / "results"
    rng = np.random.default_rng(7)
    metric_files = []
    for task in study.tasks.values():
        write_data_files(results, task, seeds)
        for model in study.models:
            for seed in seeds:
                metric_files.append(write_run(results, task, model, seed, study.is_baseline(model), rng, signals[model]))
    if projections:
        for seed in seeds:
            for model in study.checkpoints:
                tiny_png(workdir / layout.projection("png", "hiv", model, "scaffold", seed, "pca"), seed)
                write_json({"zeroshot": {"silhouette": 0.01, "knn": 0.61, "logreg": 0.64, "probe_metric": "auroc"},
                            "finetuned": {"silhouette": 0.2, "knn": 0.77, "logreg": None, "probe_metric": "auroc"},
                            "pca_explained_variance": {"zeroshot": [0.3, 0.1], "finetuned": [0.5, 0.2]}},
                           workdir / layout.separation("hiv", model, "scaffold", seed))
    write_summary(metric_files, results / "metrics.csv", results / "summary.csv")
    write_study_comparison(results / "metrics.csv", study.tasks, study.splits, study.compare, study.report.metric,
                           workdir / layout.COMPARISON, {key: workdir / path for key, path in layout.comparison_figures(study).items()},
                           workdir / layout.RANKS)
    for name, task in study.tasks.items():
        for seed in seeds:  # the test molecules' similarity to the training fold: the first ones most alike
            write_csv(pd.DataFrame({"mol_id": [f"test{i}" for i in range(N_MOLECULES["test"])],
                                    "max_similarity": np.linspace(0.9, 0.2, N_MOLECULES["test"]), "neighbour_id": "t0"}),
                      workdir / layout.test_similarity(name, "scaffold", seed))
        models = {"checkpoints": list(study.checkpoints), "baselines": list(study.baselines), "seeds": list(seeds)}
        write_uncertainty_report(task, "scaffold", **models, method="platt", inputs=[path for paths in layout.uncertainty_inputs(study, name, "scaffold").values() for path in paths],
                                 figure_png=workdir / layout.report_figure(name, "scaffold", "uncertainty"),
                                 table_csv=workdir / layout.report_figure(name, "scaffold", "uncertainty", "csv"), root=workdir)
        if task.type is TaskType.BINARY:
            write_calibration_report(task, "scaffold", **models, method="platt",
                                     inputs=[path for paths in layout.calibration_inputs(study, name, "scaffold").values() for path in paths],
                                     figure_png=workdir / layout.report_figure(name, "scaffold", "calibration"),
                                     table_csv=workdir / layout.report_figure(name, "scaffold", "calibration", "csv"), root=workdir)
        inputs = [path for paths in layout.report_figure_inputs(study, name, "scaffold").values() for path in paths]
        write_task_figures(task, "scaffold", list(study.checkpoints), list(study.baselines), list(seeds), inputs,
                           workdir / layout.report_figure(name, "scaffold", "test_curves"),
                           workdir / layout.report_figure(name, "scaffold", "learning_curves"), root=workdir)
    for rule, seconds in (("finetune/hiv/MLM/scaffold/seed0", 12.5), ("finetune/hiv/MLM/scaffold/seed1", 7.5), ("summarize", 0.4)):
        path = workdir / "benchmarks" / f"{rule}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:{int(seconds):02d}\t321.5\n")
    build_report(config, workdir)
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
    assert f"| {rf_mean:.3f} ± {rf_sd:.3f} (n=3) |" in rf_row and "**" not in markdown  # no model marked best
    assert "| MLM (published) | single run, reference | 0.793 | — |" in markdown
    assert "| MTR (published) | single run, reference | 0.733 | — |" in markdown


def test_statements_compare_with_published_runs_and_baselines_from_the_data(study):
    _, results = study
    markdown = (results / "report" / "summary.md").read_text()
    mlm_mean, mlm_sd = summary_stat(results, "MLM")
    rf_mean, rf_sd = summary_stat(results, "ecfp4_rf")
    assert f"MLM: {mlm_mean:.3f} ± {mlm_sd:.3f}, n=3 here against 0.793 published (single run), difference {mlm_mean - 0.793:+.3f}" in markdown
    per_instance = pd.read_csv(results / "metrics.csv")
    for task, metric, label in (("hiv", "auroc", "AUROC"), ("esol", "rmse", "RMSE")):
        rows = per_instance[(per_instance["task"] == task) & (per_instance["metric"] == metric)]
        expected = compare_methods(rows, metric, group="checkpoint", subject="instance", min_difference=0.1 if task == "hiv" else 0.2)
        assert expected.test != "no test" and f"{task} / scaffold: {expected.verdict(label)}" in markdown
    assert re.search(r"hiv / scaffold: AUROC(:| over) .*3 split instances \((rm-ANOVA|Friedman)", markdown)
    means = {model: summary_stat(results, model)[0] for model in ("MLM", "MTR", "ecfp4_rf")}
    above = [f"{model} ({mean:.3f})" for model, mean in means.items() if mean > 0.793]
    assert above, "the synthetic random forest should beat the published runs"
    assert f"Models here that score better than the best published run (MLM 0.793): {', '.join(above)}." in markdown
    comparison = pd.read_csv(results / "comparison.csv")
    esol = comparison[(comparison["task"] == "esol") & (comparison["metric"] == "rmse")]
    assert esol.iloc[0]["first"] == "ecfp4_rf"  # RMSE: lower is better, and the random forest's predictions are the closest
    assert set(comparison["metric"]) == {"auroc", "auprc", "mcc@valid", "rmse", "mae", "r2"} and len(comparison) == 6 * 3


def test_paired_differences_are_per_seed(study):
    _, results = study
    per_instance = pd.read_csv(results / "metrics.csv")
    auroc = per_instance[(per_instance["task"] == "hiv") & (per_instance["metric"] == "auroc")].pivot(index="instance", columns="checkpoint", values="value")
    differences = auroc["MLM"] - auroc["MTR"]
    markdown = (results / "report" / "summary.md").read_text()
    for seed, difference in differences.items():
        assert f"| {seed} | {auroc['MLM'][seed]:.3f} | {auroc['MTR'][seed]:.3f} | {difference:+.3f} |" in markdown
    assert f"MLM − MTR (AUROC): mean {differences.mean():+.3f}, sd {differences.std(ddof=1):.3f} over 3 split instances." in markdown
    pair = pd.read_csv(results / "comparison.csv").query("task == 'hiv' and metric == 'auroc'")
    pair = pair[pair["first"].isin(["MLM", "MTR"]) & pair["second"].isin(["MLM", "MTR"])].iloc[0]
    assert f"{pair['test']} over all 3 models:" in markdown and f"adjusted {p_text(pair['p_adjusted'])}" in markdown


def test_page_has_every_section_and_embeds_every_image(study):
    _, results = study
    page = (results / "report" / "index.html").read_text()
    for anchor in ("overview", "comparison", "paired", "curves", "learning", "calibration", "uncertainty", "embeddings", "qc", "splits", "provenance"):
        assert f'<section id="{anchor}">' in page
    assert '<section id="predictions">' not in page and '<section id="pretraining">' not in page  # neither configured
    sources = re.findall(r'<img src="([^"]*)"', page)
    # curves and learning curves of both tasks, calibration (binary only), uncertainty of both, a projection of each
    # checkpoint, the comparison of both tasks and the ranks across them
    assert len(sources) == 2 * 2 + 1 + 2 + 2 + 2 + 1
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r'(?:src|href)="(?!data:|#)', page)  # nothing outside the file
    assert "silhouette" in page and "0.010 → 0.200" in page and "— →" not in page and "0.770" in page
    assert "40.0% → 70.0%" in page  # PCA variance explained by two components
    assert "unclosed ring" in page and "1/2 positive (50.0%)" in page


def test_provenance_sums_benchmarks_per_rule(study):
    config, results = study
    table = benchmark_table(DeclaredInputs(declared(config), results.parent))
    assert table.rows[0] == ["finetune", "2", "20.0", "10.0", "12.5", "322"]
    assert table.rows[-1][:3] == ["all rules", "3", "20.4"]
    page = (results / "report" / "index.html").read_text()
    assert "ChemBERTa-77M-MLM" in page and "git commit:" in page and "scikit-learn" in page


def test_missing_inputs_are_stated_and_sections_that_do_not_apply_are_left_out(tmp_path):
    config, results = build_study(tmp_path, [], projections=False)
    page = (results / "report" / "index.html").read_text()
    assert "No separation files." in page and f"{layout.projection('png', 'hiv', 'MLM', 'scaffold', 0, 'pca')} is missing" in page
    assert re.search(r"hiv / scaffold: AUROC(:| over) .*3 split instances", page)
    assert '<section id="paired">' in page and '<section id="pretraining">' not in page  # nothing pre-trained here
    for paired in (["MLM", "ChemBERTa-big"], None):  # a checkpoint that did not run, or no pair asked for
        config["report"] = {"paired": paired}
        shutil.rmtree(tmp_path / "benchmarks", ignore_errors=True)
        build_report(config, tmp_path)
        page = (results / "report" / "index.html").read_text()
        assert '<section id="paired">' not in page and "Paired comparison" not in page
        assert "No benchmark files." in page


def test_fewer_than_three_instances_make_no_test_and_a_flat_model_is_named(tmp_path):
    config, results = build_study(tmp_path, ["ecfp4_rf"], projections=False, seeds=(0, 1), signals={"MTR": 0})
    markdown = (results / "report" / "summary.md").read_text()
    assert ("hiv / scaffold: AUROC: 2 split instances with a result for every model (a test needs at least 3); no test can "
            "be made. MTR has not learned (test predictions nearly constant in 2 of 2 split instances") in markdown
    assert "| MTR | fine-tuned; has not learned on hiv / scaffold, esol / scaffold |" in markdown
    assert "over 2 split instances. 2 split instances with a result for every model" in markdown  # the paired section
    comparison = pd.read_csv(results / "comparison.csv")
    assert (comparison["test"] == "no test").all() and comparison["p_adjusted"].isna().all()
    assert set(comparison.query("task == 'hiv'")["not_learned"].fillna("")) == {"", "MTR"}


def test_a_study_without_the_published_task_shows_no_published_references(tmp_path):
    config, results = build_study(tmp_path, ["ecfp4_rf"], projections=False)
    config["report"] = {"published_task": "clintox"}
    build_report(config, tmp_path)
    page = (results / "report" / "index.html").read_text()
    markdown = (results / "report" / "summary.md").read_text()
    assert "(published)" not in page and "published" not in markdown.split("## How the numbers compare")[1]
    assert "single run, reference" not in markdown


def test_the_report_reads_only_declared_files(study, tmp_path):
    config, results = study
    files = DeclaredInputs(declared(config), results.parent)
    assert files(layout.SUMMARY) == results.parent / layout.SUMMARY
    with pytest.raises(InputError, match=r"results/hiv/finetune/MLM/scaffold/seed7/run.json: read by the report but not an input"):
        files(layout.finetune_file("run.json", "hiv", "MLM", "scaffold", 7))
    fewer = {**config, "seeds": [0, 1]}
    assert layout.split_file("json", "hiv", "scaffold", 2) not in declared(fewer)
    shutil.copytree(results.parent, tmp_path / "run")
    build_report(fewer, tmp_path / "run")  # a seed removed: its files exist but the report does not read them
    page = (tmp_path / "run" / layout.REPORT_HTML).read_text()
    assert "<td>hiv</td><td>scaffold</td><td>seed2</td>" not in page and "<td>hiv</td><td>scaffold</td><td>seed1</td>" in page


def test_multilabel_curves_are_macro_averages_matching_the_metrics():
    """Labels with different base rates are not pooled: the curves' AUROC is the mean of per-label AUROCs, as in
    the metrics table."""
    rng = np.random.default_rng(3)
    n = 300
    rare, common = (rng.random(n) < 0.05).astype(float), (rng.random(n) < 0.5).astype(float)
    table = pd.DataFrame({
        "mol_id": [str(i) for i in range(n)], "fold": "test", "y:rare": rare, "y:common": common,
        "p:rare": np.clip(0.02 + 0.3 * rare + rng.normal(0, 0.1, n), 0, 1), "p:common": np.clip(0.5 + 0.2 * common + rng.normal(0, 0.3, n), 0, 1),
    })
    table.loc[:4, "y:common"] = np.nan  # missing labels are left out for their label only
    task = TaskSpec("tox", "-", "smiles", ("rare", "common"), TaskType.MULTILABEL)
    scored = scored_labels(table, task)
    assert [name for name, _, _ in scored] == ["rare", "common"] and len(scored[1][1]) == n - 5
    curves = ClassificationCurves.of(scored)
    valid = table.assign(fold="valid")
    metrics = evaluate_predictions(pd.concat([valid, table]), task, bootstrap_samples=0, seed=0)["metrics"]
    assert curves.auroc == pytest.approx(metrics["auroc"]) == pytest.approx(np.mean([metrics["auroc[rare]"], metrics["auroc[common]"]]))
    pooled = ClassificationCurves.of([("all", np.concatenate([truth for _, truth, _ in scored]), np.concatenate([score for _, _, score in scored]))])
    assert abs(pooled.auroc - curves.auroc) > 0.01  # what pooling would have shown instead


def test_scores_per_label_and_per_class():
    multilabel = TaskSpec("tox", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
    table = pd.DataFrame({"fold": ["valid", "test", "test"], "y:a": [1, 1, np.nan], "y:b": [0, 0, 1],
                          "p:a": [0.1, 0.9, 0.5], "p:b": [0.2, 0.3, 0.8]})
    (a, truth_a, scores_a), (b, truth_b, scores_b) = scored_labels(table, multilabel)
    assert (a, truth_a.tolist(), scores_a.tolist()) == ("a", [1], [0.9])  # the missing label is left out
    assert (b, truth_b.tolist(), scores_b.tolist()) == ("b", [0, 1], [0.3, 0.8])
    multiclass = TaskSpec("act", "-", "smiles", ("activity",), TaskType.MULTICLASS)
    table = pd.DataFrame({"fold": ["test", "test"], "y:activity": ["CI", "CA"], "p:CI": [0.7, 0.2], "p:CA": [0.3, 0.8]})
    assert [(name, truth.tolist(), scores.tolist()) for name, truth, scores in scored_labels(table, multiclass)] == [
        ("CI", [1, 0], [0.7, 0.2]), ("CA", [0, 1], [0.3, 0.8])]


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
    assert probe["images"] == 12 and probe["loaded"] == 12
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


def test_calibration_and_uncertainty_sections_say_what_they_found(study):
    _, results = study
    page = (results / "report" / "index.html").read_text()
    calibration = pd.read_csv(results.parent / layout.report_figure("hiv", "scaffold", "calibration", "csv"))
    assert set(calibration["model"]) == {"MLM", "MTR", "ecfp4_rf"} and len(calibration) == 9
    assert (calibration[["brier_before", "brier_after", "ece_before", "ece_after"]] >= 0).all().all()
    assert "Brier score before → after" in page and "never on the test fold" in page
    uncertainty = pd.read_csv(results.parent / layout.report_figure("esol", "scaffold", "uncertainty", "csv"))
    assert set(uncertainty["ordering"]) == {"ensemble sd", "similarity", "random"} and set(uncertainty["metric"]) == {"RMSE"}
    full = uncertainty[uncertainty["coverage"] == 1.0].groupby("model")["error"].agg(np.ptp)
    assert (full < 1e-9).all()  # keeping everything, every order gives the same error
    assert "keeping the 50% of test molecules with the lowest sd over the seeds" in page
    assert ("lowers the" in page) or ("does not help" in page)


def uncertainty_run(workdir: Path, task: TaskSpec, model: str, seed: int | str, truth: np.ndarray, scores: np.ndarray,
                    split: str = "scaffold", folds: np.ndarray | None = None) -> list[str]:
    """One split instance's predictions (first half valid, second half test, unless `folds` says) and calibration of a
    binary task."""
    folds = folds if folds is not None else np.where(np.arange(len(truth)) < len(truth) // 2, "valid", "test")
    table = pd.DataFrame({"mol_id": [f"m{i}" for i in range(len(truth))], "fold": folds, "y:y": truth, "p:y": scores})
    files = [layout.predictions(task.name, model, split, seed, True), layout.run_file("calibration.json", task.name, model, split, seed, True)]
    write_csv(table, workdir / files[0])
    write_json(fit_predictions(table, task), workdir / files[1])
    return files


def test_uncertainty_scores_calibrated_probabilities_and_reads_no_meaning_into_rounding_noise(tmp_path):
    """Seeds of one deterministic model differ by float noise only: no sd ordering (the section says why). The
    Brier score is that of the calibrated probabilities, which the predictions hand to users."""
    from chemlm.calibration import apply, brier_score
    from chemlm.report.sections import uncertainty_statements

    task = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.1).astype(float)
    scores = np.clip(0.3 + 0.4 * truth + 0.3 * rng.random(400), 0, 1)  # overconfident: calibration changes them
    inputs = []
    for seed in SEEDS:
        inputs += uncertainty_run(tmp_path, task, "logreg", seed, truth, scores + seed * 1e-15)
        inputs += uncertainty_run(tmp_path, task, "forest", seed, truth, np.clip(scores + 0.05 * rng.standard_normal(400), 0, 1))
        similarity = layout.test_similarity(task.name, "scaffold", seed)
        write_csv(pd.DataFrame({"mol_id": [f"m{i}" for i in range(200, 400)], "max_similarity": rng.random(200), "neighbour_id": "m0"}), tmp_path / similarity)
        inputs.append(similarity)
    table = write_uncertainty_report(task, "scaffold", [], ["logreg", "forest"], list(SEEDS), "platt", inputs,
                                     tmp_path / "uncertainty.png", tmp_path / "uncertainty.csv", root=tmp_path)
    assert set(table.loc[table["model"] == "logreg", "ordering"]) == {"similarity", "random"}
    assert set(table.loc[table["model"] == "forest", "ordering"]) == {"ensemble sd", "similarity", "random"}
    assert any(statement.startswith("logreg: ranking by the ensemble's sd is not possible") for statement in uncertainty_statements(table))
    calibration = fit_predictions(pd.read_csv(tmp_path / layout.predictions("t", "logreg", "scaffold", 0, True)), task)
    calibrated = apply(calibration, "platt", ["y"], scores[200:])[:, 0]
    everything = table[(table["model"] == "logreg") & (table["coverage"] == 1.0) & (table["ordering"] == "similarity")]
    assert everything["error"].iloc[0] == pytest.approx(brier_score(truth[200:], calibrated), rel=1e-6)
    assert abs(brier_score(truth[200:], calibrated) - brier_score(truth[200:], scores[200:])) > 0.01
    assert everything["metric"].iloc[0] == "Brier score (platt calibrated)"


def test_seeds_without_a_shared_test_molecule_give_an_empty_uncertainty_table(tmp_path):
    """A random split's seeds share no test molecule: nothing to judge, and no error."""
    task = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
    rng = np.random.default_rng(1)
    inputs = []
    for seed in SEEDS:
        truth = (rng.random(40) < 0.3).astype(float)
        files = uncertainty_run(tmp_path, task, "forest", seed, truth, rng.random(40))
        table = pd.read_csv(tmp_path / files[0])
        table["mol_id"] = [f"s{seed}m{i}" for i in range(40)]  # every seed's molecules its own
        write_csv(table, tmp_path / files[0])
        similarity = layout.test_similarity(task.name, "scaffold", seed)
        write_csv(pd.DataFrame({"mol_id": table["mol_id"][20:], "max_similarity": 0.5, "neighbour_id": "x"}), tmp_path / similarity)
        inputs += [*files, similarity]
    table = write_uncertainty_report(task, "scaffold", [], ["forest"], list(SEEDS), "platt", inputs,
                                     tmp_path / "uncertainty.png", tmp_path / "uncertainty.csv", root=tmp_path)
    assert table.empty


def test_a_cross_validation_ensembles_its_repeats_out_of_fold(tmp_path):
    """Each repeat's two folds test every molecule once: the ensemble's members are the repeats, over all molecules."""
    task = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
    rng = np.random.default_rng(2)
    truth = (rng.random(80) < 0.3).astype(float)
    inputs, instances = [], []
    for repeat in range(2):
        order = rng.permutation(80)
        for fold in range(2):
            instance = f"repeat{repeat}-fold{fold}"
            folds = np.full(80, "train", dtype=object)
            folds[order[fold * 40:(fold + 1) * 40]] = "test"
            folds[order[((fold + 1) % 2) * 40:((fold + 1) % 2) * 40 + 10]] = "valid"
            inputs += uncertainty_run(tmp_path, task, "forest", instance, truth, np.clip(0.3 + 0.4 * truth + 0.2 * rng.random(80), 0, 1),
                                      split="scaffold_cv", folds=folds)
            similarity = layout.test_similarity(task.name, "scaffold_cv", instance)
            write_csv(pd.DataFrame({"mol_id": [f"m{i}" for i in np.sort(order[fold * 40:(fold + 1) * 40])], "max_similarity": rng.random(40),
                                    "neighbour_id": "x"}), tmp_path / similarity)
            inputs.append(similarity)
            instances.append(instance)
    table = write_uncertainty_report(task, "scaffold_cv", [], ["forest"], instances, "platt", inputs,
                                     tmp_path / "uncertainty.png", tmp_path / "uncertainty.csv", root=tmp_path)
    everything = table[(table["coverage"] == 1.0) & (table["ordering"] == "similarity")]
    assert everything["molecules"].iloc[0] == 80 and "ensemble sd" in set(table["ordering"])


def test_the_multiclass_brier_score_is_the_mean_over_classes():
    from chemlm.report.uncertainty import squared_errors

    task = TaskSpec("t", "-", "smiles", ("taste",), TaskType.MULTICLASS)
    test = pd.DataFrame({"y:taste": ["sweet", "bitter"], "p:sweet": [1.0, 0.5], "p:bitter": [0.0, 0.5], "p:sour": [0.0, 0.0]})
    errors = squared_errors(task, test, test[["p:sweet", "p:bitter", "p:sour"]].to_numpy())
    np.testing.assert_allclose(errors, [0.0, (0.25 + 0.25 + 0.0) / 3])


def test_baselines_are_marked_searched_only_when_their_search_ran(study, tmp_path):
    """`search.baselines` with global trials 0 searches nothing for the baselines (the rule passes no search), so
    the overview does not say their settings were searched."""
    config, results = study
    assert Study.from_config({**config, "search": {"trials": 2, "baselines": True}}).baseline_search("ecfp4_rf") == (2, 0)
    named = Study.from_config({**config, "baselines": ["ecfp4_rf", "ecfp4_logreg"], "search": {"trials": 2, "baselines": ["ecfp4_logreg"]}})
    assert named.baseline_search("ecfp4_rf") is None and named.baseline_search("ecfp4_logreg") == (2, 0)
    with pytest.raises(ConfigError, match="^config key 'search.baselines': 'lgbm' is not one of the study's baselines"):
        Study.from_config({**config, "search": {"trials": 2, "baselines": ["lgbm"]}})
    not_run = {**config, "search": {"trials": 0, "baselines": True}}
    assert Study.from_config(not_run).baseline_search("ecfp4_rf") is None
    write_report(not_run, declared(not_run), REPO, tmp_path / "index.html", tmp_path / "summary.md", root=results.parent)
    page = (tmp_path / "index.html").read_text()
    assert "<td>baseline</td>" in page and "settings searched" not in page


def test_a_published_reference_names_its_source(study, tmp_path):
    """`report.published` takes a number (a single run) or {value, source}; the source labels the reference row."""
    config, results = study
    sourced = {**config, "report": {**config.get("report", {}), "published": {
        "MLM": 0.793, "chemprop": {"value": 0.752, "source": "ChemBERTa-3, D-MPNN"}}}}
    settings = Study.from_config(sourced).report
    assert settings.published == {"MLM": 0.793, "chemprop": 0.752} and settings.published_sources == {"chemprop": "ChemBERTa-3, D-MPNN"}
    write_report(sourced, declared(sourced), REPO, tmp_path / "index.html", tmp_path / "summary.md", root=results.parent)
    markdown = (tmp_path / "summary.md").read_text()
    assert "| chemprop (published: ChemBERTa-3, D-MPNN) | reference | 0.752 | — |" in markdown
    assert "| MLM (published) | single run, reference | 0.793 | — |" in markdown
    with pytest.raises(ConfigError, match="report.published.chemprop"):
        Study.from_config({**config, "report": {"published": {"chemprop": {"source": "no value"}}}})


def test_the_methods_line_says_where_a_baseline_differs_from_fine_tuning():
    from chemlm.config import BASELINES
    from chemlm.report.sections import baseline_methods

    line = baseline_methods(BASELINES)
    assert all(line.count(f"{baseline}:") == 1 for baseline in BASELINES)
    assert "rather than fine-tuning's AdamW" in line and "sigmoid output" in line and "where fine-tuning stops on macro-F1" in line
    assert baseline_methods(()) == ""


def test_multiclass_tasks_get_per_class_tables_with_published_references_and_confusion_matrices(tmp_path):
    """One class against the rest, mean ± sd over seeds, a published reference row, the rare class named (umami has
    2 test molecules in seed 0 and none in seed 1: its AUROC rests on seed 0 alone) and confusion matrices summed over
    the seeds."""
    from chemlm.report.classes import classes_section
    from chemlm.report.results import StudyResults
    from chemlm.report.sections import split_section

    config = {
        "tasks": {"taste": {"source": "taste.csv", "smiles_column": "smiles", "label_columns": ["taste"], "type": "multiclass",
                           "folds": {"column": "fold"}}},
        "split": {"methods": ["predefined"]},
        "checkpoints": {"MLM": {"source": "DeepChem/ChemBERTa-77M-MLM"}}, "seeds": [0, 1], "baselines": ["ecfp4_rf"],
        "report": {"published_by_class": [{"model": "FART", "source": "npj Sci Food 2025, Table 2", "task": "taste", "split": "predefined",
                                           "values": {"sweet": {"accuracy": 0.926, "f1": 0.944, "auroc": 0.978}, "umami": {"f1": 0.5}}}]},
    }
    study = Study.from_config(config)
    task, classes = study.tasks["taste"], ["bitter", "sweet", "umami"]
    rng = np.random.default_rng(3)
    metric_files = []
    for model in study.models:
        for seed in (0, 1):
            truth = ["sweet"] * 12 + ["bitter"] * 6 + ["umami"] * (2 if seed == 0 else 0)
            scores = rng.random((len(truth), 3)) + np.array([[classes.index(name) == k for k in range(3)] for name in truth]) * 1.5
            probabilities = scores / scores.sum(axis=1, keepdims=True)
            table = pd.DataFrame({"mol_id": [f"m{i}" for i in range(len(truth))], "fold": "test", "y:taste": truth,
                                  **{f"p:{name}": probabilities[:, k] for k, name in enumerate(classes)}})
            table = pd.concat([table.iloc[:2].assign(fold="valid"), table], ignore_index=True)
            stage = "baselines" if study.is_baseline(model) else "finetune"
            write_csv(table, tmp_path / f"results/taste/{stage}/{model}/predefined/seed{seed}/predictions.csv")
            metrics = tmp_path / layout.metrics("taste", model, "predefined", seed)
            write_metrics(tmp_path / f"results/taste/{stage}/{model}/predefined/seed{seed}/predictions.csv", metrics, task, model, "predefined", f"seed{seed}", seed, 0)
            metric_files.append(metrics)
    write_summary(metric_files, tmp_path / layout.PER_INSTANCE, tmp_path / layout.SUMMARY)
    found = {"sources": [{"path": "taste.csv", "fold": "train", "rows": 30, "matched": 28, "invalid": 1, "not_in_task": 1}]}
    for seed in (0, 1):
        write_json({"molecules": 4, "sizes": {"train": 2, "valid": 1, "test": 1}, "fractions": {"train": 0.5, "valid": 0.25, "test": 0.25},
                    "labels": {}, "predefined": found}, tmp_path / layout.split_file("json", "taste", "predefined", seed))
    results = StudyResults.load(study, DeclaredInputs(declared(config), tmp_path))
    assert ("taste / predefined, the published folds (train: taste.csv, 30 rows, 28 matched, 1 invalid, 1 not among the task&#x27;s "
            f"molecules). The rows left out are listed in {tmp_path / layout.split_file('json', 'taste', 'predefined', 0)}") in split_section(results).body
    body = classes_section(results).body
    assert "Test molecules per class: bitter 6, sweet 12, umami 0-2." in body
    assert "fewer than 10 test molecules: bitter (6 in a split instance), umami (0 in a split instance)" in body
    mlm_sweet_f1 = results.stat("taste", "MLM", "predefined", "f1[sweet]")
    assert mlm_sweet_f1.n == 2 and f"<td>{mlm_sweet_f1.text()}</td>" in body
    assert results.stat("taste", "MLM", "predefined", "auroc[umami]").n == 1  # undefined in seed 1, never a silent 0.5
    assert "<tr class=\"reference\"><td>FART (published: npj Sci Food 2025, Table 2)</td><td>—</td><td>0.944</td><td>0.500</td></tr>" in body
    first = json.loads((tmp_path / layout.metrics("taste", "MLM", "predefined", 0)).read_text())["confusion"]
    second = json.loads((tmp_path / layout.metrics("taste", "MLM", "predefined", 1)).read_text())["confusion"]
    summed = np.asarray(first["matrix"]) + np.asarray(second["matrix"])
    assert summed.sum() == 20 + 18 and summed[2].sum() == 2
    assert "<td>umami</td>" + "".join(f"<td>{count}</td>" for count in summed[2]) in body
    assert "MLM (2 split instances)" in body and "ecfp4_rf (2 split instances)" in body


def test_the_explanations_section_shows_the_chosen_molecules_and_how_complete_their_attributions_are(tmp_path):
    from chemlm.report.explanations import explanations_section
    from chemlm.report.results import StudyResults

    config = {**study_config(["ecfp4_rf"]), "explain": {"molecules": 1}}
    config["tasks"] = {"hiv": config["tasks"]["hiv"]}
    study = Study.from_config(config)
    for path in layout.report_inputs(study)["summary"]:
        write_csv(pd.DataFrame(columns=["task", "checkpoint", "split", "instance", "metric", "value", "mean", "sd", "n_instances"]), tmp_path / path)
    write_csv(pd.DataFrame({"id": ["m7"], "smiles": ["CCO"], "reason": ["models disagree"], "target": ["HIV_active"], "truth": [1.0],
                            "mean": [0.5], "sd": [0.25]}), tmp_path / layout.explain_file("selected.csv", "hiv", "scaffold"))
    write_csv(pd.DataFrame({"model": ["MLM", "MTR", "ecfp4_rf"], "id": "m7", "smiles": "CCO", "explained": "log-odds",
                            "output": [1.0, 0.5, 0.7], "baseline_output": [0.0, 0.1, None], "completeness_gap": [0.01, -0.2, None],
                            "complete": [True, False, None], "steps": [50, 400, None], "share:ring closure": [0.1, 0.3, None],
                            "share:bond": [0.1, 0.1, None]}), tmp_path / layout.explain_file("explanations.csv", "hiv", "scaffold"))
    chemprop = pd.DataFrame({"model": ["chemprop"], "id": "m7", "smiles": "CCO", "explained": "logit", "output": [0.3], "baseline_output": [0.1],
                             "completeness_gap": [0.0], "complete": [True], "steps": [50]})
    written = pd.read_csv(tmp_path / layout.explain_file("explanations.csv", "hiv", "scaffold"))
    write_csv(pd.concat([written, chemprop], ignore_index=True), tmp_path / layout.explain_file("explanations.csv", "hiv", "scaffold"))
    tiny_png(tmp_path / layout.explain_file("explanations.png", "hiv", "scaffold"), 0)
    results = StudyResults.load(study, DeclaredInputs(declared(config), tmp_path))
    body = explanations_section(results).body
    assert "<td>m7</td><td>models disagree</td><td>HIV_active</td><td>1.0</td><td>0.500 ± 0.250</td><td>CCO</td>" in body
    assert "2 of 3 attributions sum to the change of the output from the baseline within 5 % (largest gap 0.2, at up to 400 steps)" in body
    assert "on average 30% of a transformer&#x27;s absolute attribution went to tokens that are no atom" in body
    assert "<img" in body
    assert explanations_section(StudyResults.load(Study.from_config({k: v for k, v in config.items() if k != "explain"}),
                                                  DeclaredInputs(declared(config), tmp_path))) is None


def test_a_rule_tasks_attributions_are_shown_against_the_known_answer(tmp_path):
    from chemlm.report.explanations import check_part
    from chemlm.report.results import StudyResults

    config = {"tasks": {"benzene": {"source": "results/rule_tasks/benzene.csv", "smiles_column": "smiles", "label_columns": ["label"],
                                    "type": "binary"}},
              "rule_tasks": {"benzene": {"corpus": "corpus.txt", "present": ["c1ccccc1"]}},
              "checkpoints": {"MLM": {"source": "DeepChem/ChemBERTa-77M-MLM"}}, "seeds": [0], "explain": {}}
    study = Study.from_config(config)
    write_csv(pd.DataFrame({"task": "benzene", "checkpoint": "MLM", "split": "scaffold", "instance": "seed0", "metric": "auroc", "value": [0.97]}),
              tmp_path / layout.PER_INSTANCE)
    write_csv(pd.DataFrame({"task": "benzene", "checkpoint": "MLM", "split": "scaffold", "metric": "auroc", "mean": [0.97], "sd": [None],
                            "n_instances": [1]}), tmp_path / layout.SUMMARY)
    write_csv(pd.DataFrame({"model": ["MLM", "random attributions"], "molecules": [100, 100], "atom_auroc_mean": [0.93, 0.5],
                            "atom_auroc_sd": [0.05, 0.2]}), tmp_path / layout.explain_file("attribution_check.csv", "benzene", "scaffold"))
    results = StudyResults.load(study, DeclaredInputs(declared(config), tmp_path))
    part = check_part(results, "benzene", "scaffold")
    assert "matches every one of c1ccccc1; the atoms" in part
    assert "<td>MLM</td><td>0.970</td><td>0.930 ± 0.050</td><td>100</td>" in part
    assert "<td>random attributions</td><td>—</td><td>0.500 ± 0.200</td><td>100</td>" in part
