"""Projections of embeddings before and after fine-tuning: files, figures and separation numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from chemlm.config import describe_config_error, load_schema
from chemlm.io import InputError
from chemlm.projection import ProjectionLabels, separation, write_projection, write_separation
from chemlm.tasks import TaskSpec, TaskType

BINARY = TaskSpec("hiv", "-", "smiles", ("active",), TaskType.BINARY)
MULTICLASS = TaskSpec("act", "-", "smiles", ("activity",), TaskType.MULTICLASS)
REGRESSION = TaskSpec("esol", "-", "smiles", ("logS",), TaskType.REGRESSION)
MULTILABEL = TaskSpec("tox", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
N = 120
PNG_MAGIC = b"\x89PNG"


@pytest.fixture(autouse=True)
def one_thread():
    """As Snakemake runs the step: OMP_NUM_THREADS is the rule's threads (1). t-SNE's OpenMP loops with a thread
    per core slow down many times over when other processes keep the cores busy."""
    with threadpool_limits(1):
        yield


def separated(labels: np.ndarray, seed: int = 0, dimensions: int = 16) -> np.ndarray:
    """Embeddings whose classes sit in far-apart clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(labels.max() + 1, dimensions))
    return (centres[labels] + rng.normal(0, 1, size=(len(labels), dimensions))).astype(np.float32)


def random_embeddings(n: int = N, seed: int = 1, dimensions: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dimensions)).astype(np.float32)


def binary_labels(n: int = N) -> np.ndarray:
    return (np.arange(n) % 3 == 0).astype(int)  # a third positive


def write_embeddings_file(path, mol_ids, embeddings):
    np.savez(path, mol_id=np.asarray(mol_ids, dtype=str), embedding=embeddings)
    return path


def test_probes_find_separated_classes_and_not_random_ones():
    labels = binary_labels()
    values = ProjectionLabels("active", pd.Series(labels).astype("Int64"), categorical=True)
    good = separation(separated(labels), values, TaskType.BINARY, folds=5, seed=0, context="synthetic")
    bad = separation(random_embeddings(), values, TaskType.BINARY, folds=5, seed=0, context="synthetic")
    assert good.probe_metric == bad.probe_metric == "auroc"
    assert good.knn > 0.99 and good.logreg > 0.99 and good.silhouette > 0.5
    assert 0.3 < bad.knn < 0.7 and 0.3 < bad.logreg < 0.7 and abs(bad.silhouette) < 0.1


def test_multiclass_probes_report_accuracy_and_regression_r2():
    classes = np.arange(N) % 3
    names = pd.Series(np.array(["CA", "CI", "CM"])[classes])
    multiclass = separation(separated(classes), ProjectionLabels("activity", names, True), TaskType.MULTICLASS, 5, 0, "synthetic")
    assert multiclass.probe_metric == "accuracy" and multiclass.knn > 0.99 and multiclass.logreg > 0.99
    target = np.linspace(-3, 3, N)
    embeddings = np.column_stack([target, random_embeddings(dimensions=4)]).astype(np.float32)
    regression = separation(embeddings, ProjectionLabels("logS", pd.Series(target), False), TaskType.REGRESSION, 5, 0, "synthetic")
    assert regression.probe_metric == "r2" and regression.logreg > 0.95 and regression.knn > 0.5
    assert regression.silhouette is None  # values are not classes


def test_one_class_gives_null_with_a_logged_reason(caplog):
    values = ProjectionLabels("active", pd.Series(np.zeros(N, dtype=int)).astype("Int64"), True)
    result = separation(random_embeddings(), values, TaskType.BINARY, 5, 0, context="hiv / tiny")
    assert (result.silhouette, result.knn, result.logreg) == (None, None, None)
    assert "undefined for hiv / tiny: 1 class" in caplog.text


def test_rare_class_reduces_the_folds_instead_of_failing():
    labels = np.zeros(N, dtype=int)
    labels[:3] = 1  # three positives: at most three folds keep a positive in each
    values = ProjectionLabels("active", pd.Series(labels).astype("Int64"), True)
    result = separation(separated(labels), values, TaskType.BINARY, 5, 0, "synthetic")
    assert result.knn is not None and result.logreg > 0.9


@pytest.fixture
def binary_run(tmp_path):
    """Zero-shot embeddings are noise, fine-tuned ones separate the classes; predictions follow the labels."""
    labels = binary_labels()
    mol_ids = [f"m{i}" for i in range(N)]
    write_embeddings_file(tmp_path / "zeroshot.npz", mol_ids, random_embeddings())
    write_embeddings_file(tmp_path / "finetuned.npz", mol_ids, separated(labels))
    # molecules.csv has more molecules than the test fold, in another order
    extra = pd.DataFrame({"mol_id": ["x1", "x2"], "smiles": "C", "active": [0.0, 1.0]})
    molecules = pd.concat([extra, pd.DataFrame({"mol_id": mol_ids, "smiles": "C", "active": labels.astype(float)})[::-1]])
    molecules.to_csv(tmp_path / "molecules.csv", index=False)
    p = np.where(labels == 1, 0.7, 0.2)
    p[:6] = [0.9, 0.1, 0.1, 0.95, 0.9, 0.1]  # m0 TP, m1 TN, m2 TN, m3 TP, m4 FP, m5 TN at threshold 0.5
    predictions = pd.DataFrame({"mol_id": mol_ids, "fold": "test", "y:active": labels, "p:active": p})
    valid = pd.DataFrame({"mol_id": ["v1"], "fold": "valid", "y:active": [1], "p:active": [0.3]})
    pd.concat([valid, predictions]).to_csv(tmp_path / "predictions.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": {"threshold@valid": 0.5}}))
    return tmp_path


def run_projections(directory, task, methods=("pca",), with_outcome=True):
    """The project job of each method and the separation job, as the workflow runs them; returns the separation record."""
    out = directory / "out"
    title = "hiv / tiny / scaffold / seed 0"
    for method in methods:
        write_projection(
            directory / "zeroshot.npz", directory / "finetuned.npz", directory / "molecules.csv", task, method, 0,
            out / f"{method}.csv", out / f"{method}.png", title,
            predictions_csv=directory / "predictions.csv" if with_outcome else None,
            metrics_json=directory / "metrics.json" if with_outcome else None,
        )
    record = write_separation(
        directory / "zeroshot.npz", directory / "finetuned.npz", directory / "molecules.csv", task, 5, 0, out / "separation.json", title
    )
    return out, record


def test_binary_files_figures_and_separation(binary_run):
    out, record = run_projections(binary_run, BINARY)
    saved = json.loads((out / "separation.json").read_text())
    assert saved == record
    assert set(saved) == {"zeroshot", "finetuned", "pca_explained_variance"}
    for stage in ("zeroshot", "finetuned"):
        assert set(saved[stage]) == {"silhouette", "knn", "logreg", "probe_metric"}
        first, second = saved["pca_explained_variance"][stage]
        assert 0 < second <= first and first + second <= 1
    assert saved["finetuned"]["knn"] > 0.99 and saved["finetuned"]["logreg"] > 0.99
    assert saved["zeroshot"]["knn"] < 0.75 and saved["zeroshot"]["logreg"] < 0.75
    # separated clusters put most variance on the first component; noise spreads it out
    assert saved["pca_explained_variance"]["finetuned"][0] > saved["pca_explained_variance"]["zeroshot"][0]

    table = pd.read_csv(out / "pca.csv", dtype={"mol_id": str})
    assert list(table.columns) == ["mol_id", "stage", "x", "y", "label", "outcome"]
    assert table["stage"].value_counts().to_dict() == {"zeroshot": N, "finetuned": N}
    assert table["mol_id"].tolist()[:3] == ["m0", "m1", "m2"]  # embedding order, not molecules.csv order
    assert (out / "pca.png").read_bytes()[:4] == PNG_MAGIC
    table = table.query("stage == 'finetuned'").set_index("mol_id")
    assert table.loc[["m0", "m1", "m3", "m4", "m5"], "outcome"].tolist() == ["TP", "TN", "TP", "FP", "TN"]
    assert table.loc["m6", "outcome"] == "TP" and table.loc["m7", "outcome"] == "TN"
    assert table["label"].tolist() == binary_labels().tolist()


def test_tsne_when_configured(binary_run):
    out, record = run_projections(binary_run, BINARY, methods=("tsne",))
    table = pd.read_csv(out / "tsne.csv")
    assert table["stage"].value_counts().to_dict() == {"zeroshot": N, "finetuned": N} and np.isfinite(table[["x", "y"]]).all().all()
    assert (out / "tsne.png").read_bytes()[:4] == PNG_MAGIC and not (out / "pca.csv").exists()
    assert set(record["pca_explained_variance"]) == {"zeroshot", "finetuned"}  # separation computes PCA itself


def test_binary_without_threshold_has_no_outcome(binary_run):
    (binary_run / "metrics.json").write_text(json.dumps({"metrics": {"threshold@valid": None}}))
    out, _ = run_projections(binary_run, BINARY)
    assert pd.read_csv(out / "pca.csv")["outcome"].isna().all()


def test_multiclass_multilabel_and_regression_tables(tmp_path):
    mol_ids = [f"m{i}" for i in range(N)]
    classes = np.arange(N) % 3
    write_embeddings_file(tmp_path / "zeroshot.npz", mol_ids, random_embeddings())
    write_embeddings_file(tmp_path / "finetuned.npz", mol_ids, separated(classes))
    first_label = np.where(np.arange(N) % 10 == 9, np.nan, classes == 0)
    pd.DataFrame(
        {
            "mol_id": mol_ids,
            "smiles": "C",
            "activity": np.array(["CA", "CI", "CM"])[classes],
            "a": first_label,
            "b": 1.0,
            "logS": classes * 2.0 + 0.5,
        }
    ).to_csv(tmp_path / "molecules.csv", index=False)

    out, record = run_projections(tmp_path, MULTICLASS, with_outcome=False)
    table = pd.read_csv(out / "pca.csv")
    assert set(table["label"]) == {"CA", "CI", "CM"} and table["outcome"].isna().all()
    assert record["finetuned"]["probe_metric"] == "accuracy" and record["finetuned"]["knn"] > 0.99

    out, record = run_projections(tmp_path, MULTILABEL, with_outcome=False)
    table = pd.read_csv(out / "pca.csv")
    assert table["label"].isna().sum() == 2 * 12  # the first label's gaps stay gaps
    assert record["finetuned"]["probe_metric"] == "auroc" and record["finetuned"]["logreg"] > 0.99

    out, record = run_projections(tmp_path, REGRESSION, with_outcome=False)
    assert set(pd.read_csv(out / "pca.csv")["label"]) == {0.5, 2.5, 4.5}
    assert record["finetuned"]["probe_metric"] == "r2" and record["finetuned"]["silhouette"] is None
    assert (out / "pca.png").read_bytes()[:4] == PNG_MAGIC


def test_stages_with_different_molecules_are_an_error(binary_run):
    write_embeddings_file(binary_run / "finetuned.npz", [f"z{i}" for i in range(N)], random_embeddings())
    with pytest.raises(InputError, match="its molecules differ"):
        run_projections(binary_run, BINARY)


def test_config_needs_pca_among_the_methods():
    config = {
        "tasks": {"t": {"source": "t.csv", "smiles_column": "smiles", "label_columns": ["y"], "type": "binary"}},
        "checkpoints": {"c": {"source": "org/name"}},
    }
    schema = load_schema()
    assert describe_config_error({**config, "project": {"methods": ["pca", "umap", "tsne"]}}, schema) is None
    assert describe_config_error({**config, "project": {"methods": ["umap"]}}, schema) == "config key 'project.methods': must include 'pca'"
    assert describe_config_error({**config, "embed": {"pooling": "max"}}, schema) == (
        "config key 'embed.pooling': 'max' is not one of ['mean', 'cls']"
    )
