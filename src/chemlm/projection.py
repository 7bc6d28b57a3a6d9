"""Test-set embeddings before and after fine-tuning: 2-D projections, figures and how well they separate labels.

Separation is measured on the full embeddings, not on a 2-D projection: the silhouette score by label and
the cross-validated score of a k-NN and a logistic-regression probe (AUROC for binary and multi-label tasks,
whose first label is used, accuracy for multi-class, R2 with a k-NN and a ridge regressor for regression).
Only scikit-learn and matplotlib; UMAP is imported when it is asked for.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from chemlm.io import InputError, atomic_path, read_csv, read_json, write_csv, write_json
from chemlm.tasks import TaskSpec, TaskType, prediction_header

logger = logging.getLogger(__name__)

STAGES = ("zeroshot", "finetuned")
STAGE_TITLES = {"zeroshot": "before fine-tuning (zero-shot)", "finetuned": "after fine-tuning"}
METHODS = ("pca", "umap", "tsne")
METHOD_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
PROBE_METRICS = {
    TaskType.BINARY: "auroc",
    TaskType.MULTILABEL: "auroc",
    TaskType.MULTICLASS: "accuracy",
    TaskType.REGRESSION: "r2",
}
SKLEARN_SCORING = {"auroc": "roc_auc", "accuracy": "accuracy", "r2": "r2"}
KNN_NEIGHBOURS = 15
# The silhouette score costs n^2 distances: above this many molecules it is computed on a seeded sample.
SILHOUETTE_MAX_MOLECULES = 5000
OUTCOMES = ("TN", "FP", "FN", "TP")  # drawn in this order: the rarer outcomes end up on top
OUTCOME_COLOURS = {"TN": "#9ecae1", "FP": "#fd8d3c", "FN": "#756bb1", "TP": "#d62728"}
MISSING_LABEL = "missing"


def point_size(n: int) -> float:
    """Marker area: large for a few hundred molecules, small enough for tens of thousands to stay readable."""
    return float(np.clip(6000 / max(n, 1), 3, 16))


@dataclass(frozen=True)
class StageEmbeddings:
    mol_ids: np.ndarray
    embeddings: np.ndarray  # (n, hidden) float32


@dataclass(frozen=True)
class ProjectionLabels:
    """The label each test molecule is coloured and probed by, in embedding order."""

    name: str
    values: pd.Series  # as written to the tables: 0/1, class names or values; NaN for missing
    categorical: bool
    outcome: pd.Series | None = None  # binary: TP/FP/TN/FN at the validation threshold


@dataclass(frozen=True)
class Separation:
    silhouette: float | None
    knn: float | None
    logreg: float | None
    probe_metric: str


# ---------------------------------------------------------------------------------------------------
# Inputs


def read_embeddings(path: Path) -> StageEmbeddings:
    try:
        with np.load(path, allow_pickle=False) as data:
            mol_ids, embeddings = data["mol_id"].astype(str), data["embedding"].astype(np.float32)
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not an embeddings file ({error})") from None
    if embeddings.ndim != 2 or len(embeddings) != len(mol_ids):
        raise InputError(f"{path}: {len(mol_ids)} mol_ids but embeddings of shape {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise InputError(f"{path}: embeddings contain NaN or infinite values")
    return StageEmbeddings(mol_ids, embeddings)


def binary_outcomes(
    y: pd.Series, predictions_csv: Path, metrics_json: Path, label: str, mol_ids: np.ndarray
) -> pd.Series | None:
    """TP/FP/TN/FN of each test molecule at the metrics file's `threshold@valid` (positive when p >= threshold)."""
    threshold = read_json(metrics_json).get("metrics", {}).get("threshold@valid")
    if threshold is None:
        logger.warning("%s: no threshold@valid (one class in the validation fold?): no TP/FP/TN/FN colouring", metrics_json)
        return None
    predictions = read_csv(predictions_csv, dtype={"mol_id": str, "fold": str})
    column = prediction_header(label)
    if column not in predictions.columns:
        raise InputError(f"{predictions_csv}: no column '{column}'")
    test = predictions[predictions["fold"] == "test"].set_index("mol_id")[column]
    missing = [mol_id for mol_id in mol_ids if mol_id not in test.index]
    if missing:
        raise InputError(f"{predictions_csv}: no test prediction for mol_id '{missing[0]}'")
    predicted = test.loc[mol_ids].to_numpy(dtype=float) >= float(threshold)
    truth = y.to_numpy(dtype=float) == 1
    outcome = np.where(predicted, np.where(truth, "TP", "FP"), np.where(truth, "FN", "TN"))
    return pd.Series(np.where(y.isna().to_numpy(), None, outcome), index=y.index, dtype=object)


def read_labels(
    molecules_csv: Path,
    task: TaskSpec,
    mol_ids: np.ndarray,
    predictions_csv: Path | None = None,
    metrics_json: Path | None = None,
) -> ProjectionLabels:
    """The first label of `task` for `mol_ids` (binary: with TP/FP/TN/FN when predictions and metrics are given)."""
    label = task.label_columns[0]
    text = {label: str} if task.type is TaskType.MULTICLASS else {}
    molecules = read_csv(molecules_csv, dtype={"mol_id": str, **text}).set_index("mol_id")
    if label not in molecules.columns:
        raise InputError(f"{molecules_csv}: no column '{label}'")
    unknown = [mol_id for mol_id in mol_ids if mol_id not in molecules.index]
    if unknown:
        raise InputError(f"{molecules_csv}: no molecule with mol_id '{unknown[0]}'; rerun the embeddings")
    values = molecules.loc[mol_ids, label].reset_index(drop=True)
    outcome = None
    if task.type is TaskType.BINARY and predictions_csv is not None and metrics_json is not None:
        outcome = binary_outcomes(values, Path(predictions_csv), Path(metrics_json), label, mol_ids)
    if task.type in (TaskType.BINARY, TaskType.MULTILABEL):
        values = values.astype("Int64")
    return ProjectionLabels(label, values, task.type.is_classification, outcome)


# ---------------------------------------------------------------------------------------------------
# Separation on the full embeddings


def _undefined(what: str, reason: str, context: str) -> None:
    logger.warning("%s undefined for %s: %s", what, context, reason)
    return None


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def silhouette(embeddings: np.ndarray, classes: np.ndarray, seed: int, context: str) -> float | None:
    """Silhouette score (Euclidean) of the classes; on a seeded sample above SILHOUETTE_MAX_MOLECULES molecules."""
    if len(classes) > SILHOUETTE_MAX_MOLECULES:
        sample = np.sort(np.random.default_rng(seed).choice(len(classes), SILHOUETTE_MAX_MOLECULES, replace=False))
        embeddings, classes = embeddings[sample], classes[sample]
    present = len(np.unique(classes))
    if present < 2:
        return _undefined("silhouette", f"{present} class among the labelled test molecules", context)
    if present >= len(classes):
        return _undefined("silhouette", "every molecule is its own class", context)
    return _finite_or_none(silhouette_score(embeddings, classes))


def _probe_splitter(y: np.ndarray, task_type: TaskType, folds: int, seed: int) -> KFold | StratifiedKFold | str:
    """Seeded (stratified) k-fold splits with at most `folds` folds, or why the probes are undefined."""
    if not task_type.is_classification:
        folds = min(folds, len(y))
        return KFold(folds, shuffle=True, random_state=seed) if folds >= 2 else "fewer than 2 labelled test molecules"
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        return f"{len(counts)} class among the labelled test molecules"
    # AUROC needs both classes in every test fold; for accuracy, rarer classes only draw a warning.
    folds = min(folds, int(counts.min() if PROBE_METRICS[task_type] == "auroc" else counts.max()))
    if folds < 2:
        return f"the rarest class has {counts.min()} molecule(s), too few for cross-validation"
    return StratifiedKFold(folds, shuffle=True, random_state=seed)


def probe_scores(
    embeddings: np.ndarray, y: np.ndarray, task_type: TaskType, folds: int, seed: int, context: str
) -> tuple[float | None, float | None]:
    """Mean cross-validated score of a k-NN probe and a logistic-regression (regression: ridge) probe."""
    splitter = _probe_splitter(y, task_type, folds, seed)
    if isinstance(splitter, str):
        _undefined("k-NN and logistic-regression probes", splitter, context)
        return None, None
    smallest_training_fold = len(y) - math.ceil(len(y) / splitter.get_n_splits())
    neighbours = max(1, min(KNN_NEIGHBOURS, smallest_training_fold))
    if task_type.is_classification:
        knn, linear = KNeighborsClassifier(n_neighbors=neighbours), LogisticRegression(max_iter=5000)
    else:
        knn, linear = KNeighborsRegressor(n_neighbors=neighbours), Ridge()
    scoring = SKLEARN_SCORING[PROBE_METRICS[task_type]]
    knn_score, linear_score = (
        float(np.mean(cross_val_score(model, embeddings, y, cv=splitter, scoring=scoring)))
        for model in (knn, make_pipeline(StandardScaler(), linear))
    )
    return _finite_or_none(knn_score), _finite_or_none(linear_score)


def separation(embeddings: np.ndarray, labels: ProjectionLabels, task_type: TaskType, folds: int, seed: int, context: str) -> Separation:
    """Silhouette and probe scores of one stage's embeddings; molecules without a label are left out."""
    present = labels.values.notna().to_numpy()
    x = embeddings[present]
    if labels.categorical:
        y = labels.values[present].astype(str).to_numpy()
        silhouette_value = silhouette(x, y, seed, context)
    else:
        y = labels.values[present].to_numpy(dtype=float)
        silhouette_value = _undefined("silhouette", "regression labels are not classes", context)
    knn, logreg = probe_scores(x, y, task_type, folds, seed, context)
    return Separation(silhouette_value, knn, logreg, PROBE_METRICS[task_type])


# ---------------------------------------------------------------------------------------------------
# Projections


def project_2d(embeddings: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, list[float] | None]:
    """2-D coordinates, and for PCA the explained variance ratio of its two components."""
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        return pca.fit_transform(embeddings), [float(ratio) for ratio in pca.explained_variance_ratio_]
    if method == "umap":
        import umap  # imported only when configured: its first use compiles for ~15 s

        neighbours = max(2, min(15, len(embeddings) - 1))
        return umap.UMAP(n_components=2, n_neighbors=neighbours, random_state=seed).fit_transform(embeddings), None
    if method == "tsne":
        perplexity = max(1.0, min(30.0, (len(embeddings) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings), None
    raise InputError(f"projection method '{method}': expected one of {', '.join(METHODS)}")


def _scatter_by_label(axis: Axes, xy: np.ndarray, labels: ProjectionLabels) -> None:
    values = labels.values
    if not labels.categorical:
        present = values.notna().to_numpy()
        points = axis.scatter(*xy[present].T, c=values[present].to_numpy(dtype=float), s=point_size(len(xy)), cmap="viridis", linewidths=0)
        axis.figure.colorbar(points, ax=axis, label=labels.name)
        return
    text = values.astype(object).where(values.notna(), MISSING_LABEL).astype(str)
    counts = text.value_counts()
    # Most frequent first, so rare classes (HIV actives) are drawn on top; missing labels underneath all.
    order = [name for name in counts.index if name != MISSING_LABEL]
    if MISSING_LABEL in counts.index:
        order.insert(0, MISSING_LABEL)
    for name in order:
        chosen = (text == name).to_numpy()
        colour = "#cccccc" if name == MISSING_LABEL else None
        axis.scatter(*xy[chosen].T, s=point_size(len(xy)), color=colour, alpha=0.8, linewidths=0, label=f"{labels.name} = {name} ({chosen.sum()})")


def _scatter_by_outcome(axis: Axes, xy: np.ndarray, outcome: pd.Series) -> None:
    for name in OUTCOMES:
        chosen = (outcome == name).to_numpy()
        axis.scatter(*xy[chosen].T, s=point_size(len(xy)), color=OUTCOME_COLOURS[name], alpha=0.8, linewidths=0, label=f"{name} ({chosen.sum()})")


def projection_figure(
    coordinates: dict[str, np.ndarray],
    explained: dict[str, list[float] | None],
    labels: ProjectionLabels,
    method: str,
    title: str,
) -> Figure:
    """Before | after side by side, coloured by label; a second row coloured by TP/FP/TN/FN for binary tasks."""
    rows = ["label"] + (["outcome"] if labels.outcome is not None else [])
    # The object-oriented API, not pyplot: no GUI backend, no global figure state.
    figure = Figure(figsize=(11, 4.6 * len(rows)))
    axes = figure.subplots(len(rows), len(STAGES), squeeze=False)
    name = METHOD_TITLES[method]
    for row, colouring in enumerate(rows):
        for column, stage in enumerate(STAGES):
            axis, xy = axes[row, column], coordinates[stage]
            if colouring == "label":
                _scatter_by_label(axis, xy, labels)
            else:
                _scatter_by_outcome(axis, xy, labels.outcome)
            ratios = explained.get(stage)
            if ratios:
                axis.set_xlabel(f"PC1 ({100 * ratios[0]:.1f} % of variance)")
                axis.set_ylabel(f"PC2 ({100 * ratios[1]:.1f} % of variance)")
            else:
                axis.set_xlabel(f"{name} 1")
                axis.set_ylabel(f"{name} 2")
            coloured_by = labels.name if colouring == "label" else "outcome at the validation threshold"
            axis.set_title(f"{STAGE_TITLES[stage]}, by {coloured_by}", fontsize=10)
            axis.set_xticks([])
            axis.set_yticks([])
            if labels.categorical or colouring == "outcome":
                axis.legend(fontsize=8, markerscale=2, loc="best", frameon=True)
    figure.suptitle(f"{title}: {name} of test-set embeddings")
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path) -> None:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)


def projection_table(stage_mol_ids: np.ndarray, coordinates: dict[str, np.ndarray], labels: ProjectionLabels) -> pd.DataFrame:
    outcome = labels.outcome if labels.outcome is not None else pd.Series([None] * len(stage_mol_ids), dtype=object)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "mol_id": stage_mol_ids,
                    "stage": stage,
                    "x": coordinates[stage][:, 0],
                    "y": coordinates[stage][:, 1],
                    "label": labels.values.to_numpy(),
                    "outcome": outcome.to_numpy(),
                }
            )
            for stage in STAGES
        ],
        ignore_index=True,
    )


# ---------------------------------------------------------------------------------------------------
# The step


def read_stages(zeroshot_npz: Path, finetuned_npz: Path) -> dict[str, StageEmbeddings]:
    """Both stages' embeddings, which must hold the same molecules in the same order."""
    stages = {stage: read_embeddings(Path(path)) for stage, path in zip(STAGES, (zeroshot_npz, finetuned_npz))}
    if not np.array_equal(stages["zeroshot"].mol_ids, stages["finetuned"].mol_ids):
        raise InputError(f"{finetuned_npz}: its molecules differ from those of {zeroshot_npz}; rerun the embeddings")
    return stages


def write_projection(
    zeroshot_npz: Path,
    finetuned_npz: Path,
    molecules_csv: Path,
    task: TaskSpec,
    method: str,
    seed: int,
    table_csv: Path,
    figure_png: Path,
    title: str,
    predictions_csv: Path | None = None,
    metrics_json: Path | None = None,
) -> None:
    """One method's 2-D coordinates of both stages (a table) and its figure, before | after."""
    stages = read_stages(zeroshot_npz, finetuned_npz)
    mol_ids = stages["zeroshot"].mol_ids
    labels = read_labels(Path(molecules_csv), task, mol_ids, predictions_csv, metrics_json)
    coordinates, explained = {}, {}
    for stage in STAGES:
        coordinates[stage], explained[stage] = project_2d(stages[stage].embeddings, method, seed)
    write_csv(projection_table(mol_ids, coordinates, labels), table_csv)
    save_figure(projection_figure(coordinates, explained, labels, method, title), Path(figure_png))
    logger.info("%s: %s of %d molecules written", title, METHOD_TITLES[method], len(mol_ids))


def write_separation(
    zeroshot_npz: Path,
    finetuned_npz: Path,
    molecules_csv: Path,
    task: TaskSpec,
    probe_folds: int,
    seed: int,
    separation_json: Path,
    title: str,
) -> dict:
    """How well each stage's full embeddings separate the first label (silhouette, k-NN and logistic-regression
    probes), with the share of variance of the first two principal components. Returns what it writes."""
    stages = read_stages(zeroshot_npz, finetuned_npz)
    labels = read_labels(Path(molecules_csv), task, stages["zeroshot"].mol_ids)
    record: dict = {
        stage: asdict(separation(stages[stage].embeddings, labels, task.type, probe_folds, seed, context=f"{title}, {stage}"))
        for stage in STAGES
    }
    record["pca_explained_variance"] = {stage: project_2d(stages[stage].embeddings, "pca", seed)[1] for stage in STAGES}
    write_json(record, separation_json)
    for stage in STAGES:
        logger.info("%s, %s: %s", title, stage, record[stage])
    return record
