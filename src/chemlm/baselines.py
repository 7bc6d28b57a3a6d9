"""Fingerprint baselines on the transformers' splits and seeds: ECFP4 with a random forest or a linear model.

Predictions are written in exactly the fine-tuning format (docs/design.md, item 5), so that evaluation,
the summary and the report treat a baseline like any fine-tuned checkpoint. Multi-class tasks get one
native multi-class model; multi-label and multi-output regression tasks one model per label, trained on
the molecules where that label is present. Only scikit-learn: no rdkit (fingerprints come from a file),
no torch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from chemlm.calibration import CALIBRATED_TYPES, apply, fit_predictions
from chemlm.config import BASELINES
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.search import Dimension, SearchSpace, TrialResult, select
from chemlm.folds import load_fold_tables
from chemlm.io import InputError, atomic_path, read_json, write_csv, write_json

from chemlm.scoring import Scores, ensemble_scores, library_chunks, similarity_chunks, write_scores
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

logger = logging.getLogger(__name__)

PREDICTED_FOLDS = ("valid", "test")
LOGREG_MAX_ITER = 10_000


def read_fingerprints(path: Path, mol_ids: np.ndarray) -> np.ndarray:
    """ECFP4 bits (n, 2048) as uint8 0/1 of `mol_ids`, which must be the file's molecules in its order."""
    try:
        with np.load(path, allow_pickle=False) as data:
            file_ids, packed, n_bits = data["mol_id"].astype(str), data["bits"], int(data["n_bits"])
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a fingerprints file ({error})") from None
    if len(file_ids) != len(mol_ids) or not (file_ids == np.asarray(mol_ids, dtype=str)).all():
        raise InputError(f"{path}: its mol_ids do not match molecules.csv; rerun the fingerprints")
    return np.unpackbits(packed, axis=1, count=n_bits)


# What the baseline search draws (chemlm.search), the fingerprint counterpart of the fine-tuning space: the forest's
# size and the share of the 2,048 bits each split tries, or the linear model's regularisation. Classification forests
# try a few bits per split (sqrt(2048) = 45 by default; a tenth of the bits makes the 12 forests of Tox21 take 10 min
# a trial on 2 cores), regression forests more (a third by default).
FOREST_SIZES = Dimension("n_estimators", "choice", (100, 250, 500))
LINEAR_SPACE = SearchSpace((Dimension("C", "log", (0.01, 100.0)),))
SEARCH_SPACES = {  # (baseline, is classification) -> space
    ("ecfp4_rf", True): SearchSpace((FOREST_SIZES, Dimension("max_features", "choice", ("log2", "sqrt")))),
    ("ecfp4_rf", False): SearchSpace((FOREST_SIZES, Dimension("max_features", "choice", ("sqrt", 0.1, 0.33)))),
    ("ecfp4_logreg", True): LINEAR_SPACE,
    ("ecfp4_logreg", False): LINEAR_SPACE,
}


def default_settings(baseline: str, task_type: TaskType, trees: int) -> dict:
    """Without a search: `trees` trees trying sqrt(2048) bits per split for classification and a third of them for
    regression (Breiman's recommendations, as MoleculeNet's forests), or C = 1."""
    if baseline == "ecfp4_rf":
        return {"n_estimators": trees, "max_features": "sqrt" if task_type.is_classification else 0.33}
    return {"C": 1.0}


def make_model(baseline: str, task_type: TaskType, seed: int, threads: int, settings: dict) -> BaseEstimator:
    """An unfitted scikit-learn model; classifiers weight classes by inverse frequency, like fine-tuning. A ridge
    regression (regression tasks) takes `C` as its inverse regularisation, alpha = 1 / C."""
    classification = task_type.is_classification
    if baseline == "ecfp4_rf":
        forest = dict(n_estimators=settings["n_estimators"], max_features=settings["max_features"], n_jobs=threads, random_state=seed)
        return RandomForestClassifier(**forest, class_weight="balanced") if classification else RandomForestRegressor(**forest)
    if baseline == "ecfp4_logreg":
        if classification:
            return LogisticRegression(C=settings["C"], max_iter=LOGREG_MAX_ITER, class_weight="balanced")
        return Ridge(alpha=1.0 / settings["C"])
    raise InputError(f"baseline '{baseline}': expected one of {', '.join(BASELINES)}")


def features(bits: np.ndarray, baseline: str) -> np.ndarray | sparse.csr_matrix:
    """Trees take dense float32 bits; linear models a sparse matrix (about 2 % of ECFP4 bits are set)."""
    if baseline == "ecfp4_logreg":
        return sparse.csr_matrix(bits, dtype=np.float64)
    return bits.astype(np.float32)


@dataclass
class LabelModel:
    """One fitted model (one label, or every class of a multi-class task), or the only class it saw in training."""

    model: BaseEstimator | None
    classes: list  # the output columns' classes (classification); empty for regression
    only_class: object = None

    def predict(self, x) -> np.ndarray:
        """Probabilities (n, classes) in the order of `classes` (a class absent from training gets 0), or values."""
        if not self.classes:
            return self.model.predict(x)[:, None]
        probabilities = np.zeros((x.shape[0], len(self.classes)))
        column = {name: position for position, name in enumerate(self.classes)}
        if self.model is None:
            probabilities[:, column[self.only_class]] = 1.0
            return probabilities
        probabilities[:, [column[name] for name in self.model.classes_]] = self.model.predict_proba(x)
        return probabilities


def fit_label(model: BaseEstimator, x_train, y_train: np.ndarray, classes: list, context: str) -> LabelModel:
    """`model` fitted; with one class in training there is nothing to learn: that class gets probability 1."""
    if classes:
        present = np.unique(y_train)
        if len(present) == 1:
            logger.warning("%s: only class %s in the training fold; predicting it with probability 1", context, present[0])
            return LabelModel(None, classes, present[0])
    return LabelModel(model.fit(x_train, y_train), classes)


@dataclass
class FittedBaseline:
    """A baseline trained on a train fold: prediction columns and their models, for any fingerprints."""

    baseline: str
    task: TaskSpec
    columns: list[str]
    models: list[LabelModel]

    def predict(self, bits: np.ndarray) -> np.ndarray:
        """(n, columns) probabilities of the positive class (multi-class: of each class) or values."""
        x = features(bits, self.baseline)
        if self.task.type is TaskType.MULTICLASS:
            return self.models[0].predict(x)
        if self.task.type is TaskType.REGRESSION:
            return np.column_stack([model.predict(x)[:, 0] for model in self.models])
        return np.column_stack([model.predict(x)[:, 1] for model in self.models])


def fit_baseline(
    baseline: str, task: TaskSpec, molecules: pd.DataFrame, bits: np.ndarray, seed: int, threads: int, settings: dict
) -> FittedBaseline:
    """`baseline` with `settings` trained on the train fold of `molecules` (with its `fold` column); `bits` in
    molecules order."""
    x = features(bits, baseline)
    train = (molecules["fold"] == "train").to_numpy()

    def model() -> BaseEstimator:
        return make_model(baseline, task.type, seed, threads, settings)

    if task.type is TaskType.MULTICLASS:
        label = task.label_columns[0]
        # Class names and their order as fine-tuning has them (LabelEncoding.fit).
        classes = sorted(molecules[label].dropna().astype(str).unique())
        rows = train & molecules[label].notna().to_numpy()
        fitted = fit_label(model(), x[rows], molecules.loc[rows, label].astype(str).to_numpy(), classes, f"label '{label}'")
        return FittedBaseline(baseline, task, [prediction_header(name) for name in classes], [fitted])
    models = []
    for label in task.label_columns:
        rows = train & molecules[label].notna().to_numpy()
        y = molecules.loc[rows, label].to_numpy(dtype=float)
        if task.type is TaskType.REGRESSION:
            models.append(fit_label(model(), x[rows], y, [], f"label '{label}'"))
        else:
            models.append(fit_label(model(), x[rows], y.astype(int), [0, 1], f"label '{label}'"))
    return FittedBaseline(baseline, task, [prediction_header(label) for label in task.label_columns], models)


def search_settings(
    baseline: str, task: TaskSpec, molecules: pd.DataFrame, bits: np.ndarray, seed: int, threads: int, trials: int, search_seed: int
) -> dict:
    """The baseline's search: each trial's settings trained on the train fold and scored on the valid fold alone."""
    valid = (molecules["fold"] == "valid").to_numpy()
    maximise = HIGHER_IS_BETTER[task.type]
    results = []
    scored: dict[tuple, float] = {}  # a choice-only space draws the same settings again: the same seed gives the same model
    for trial, settings in enumerate(SEARCH_SPACES[baseline, task.type.is_classification].trials(trials, search_seed)):
        started = time.perf_counter()
        key = tuple(sorted(settings.items()))
        if key not in scored:
            fitted = fit_baseline(baseline, task, molecules, bits, seed, threads, settings)
            scored[key] = float(validation_score(task.type, validation_truth(task, molecules[valid], fitted), fitted.predict(bits[valid])))
        results.append(TrialResult(trial, seed, scored[key], time.perf_counter() - started, settings))
        logger.info("%s trial %d %s: validation metric %.4f", baseline, trial, settings, scored[key])
    best, means = select(results, maximise)
    return {
        "searched": True, "settings": results[best].params, "trial": best,
        "selected_on": "the validation fold; the test fold is never read",
        "trials": [{"trial": result.trial, "params": result.params, "valid_metric": result.valid_metric,
                    "seconds": round(result.seconds, 2)} for result in results],
    }


def validation_truth(task: TaskSpec, rows: pd.DataFrame, fitted: FittedBaseline) -> np.ndarray:
    """The valid fold's labels as chemlm.metrics.validation_score takes them (multi-class: class indices)."""
    if task.type is TaskType.MULTICLASS:
        classes = [column.removeprefix(prediction_header("")) for column in fitted.columns]
        index = {name: position for position, name in enumerate(classes)}
        return rows[task.label_columns[0]].astype(str).map(index).to_numpy(dtype=float)
    return rows[list(task.label_columns)].to_numpy(dtype=float)


def train_baseline(
    molecules_csv: Path,
    split_csv: Path,
    fingerprints_npz: Path,
    task: TaskSpec,
    baseline: str,
    seed: int,
    trees: int,
    threads: int,
    predictions_csv: Path,
    calibration_json: Path,
    settings_json: Path,
    search: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Train `baseline` on the train fold and write its valid and test predictions (docs/design.md, item 5), the
    calibration fitted on the validation ones, and its settings: with `search` = (trials, seed), those of the trial
    with the best validation metric (the search reads no test label), else the defaults."""
    started = time.perf_counter()
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    bits = read_fingerprints(Path(fingerprints_npz), molecules["mol_id"].to_numpy())
    record = {"searched": search is not None, "settings": default_settings(baseline, task.type, trees), "trials": []}
    if search is not None:
        record = search_settings(baseline, task, molecules, bits, seed, threads, *search)
    fitted = fit_baseline(baseline, task, molecules, bits, seed, threads, record["settings"])
    predicted = molecules["fold"].isin(PREDICTED_FOLDS).to_numpy()
    columns, values = fitted.columns, fitted.predict(bits[predicted])
    rows = molecules[predicted]
    table = pd.DataFrame({"mol_id": rows["mol_id"].to_numpy(), "fold": rows["fold"].to_numpy()})
    for label in task.label_columns:
        table[label_header(label)] = rows[label].to_numpy()
    for column, column_values in zip(columns, values.T):
        table[column] = column_values
    # valid rows first, then test, as fine-tuning writes them
    table = table.sort_values("fold", key=lambda fold: fold.map(PREDICTED_FOLDS.index), kind="stable").reset_index(drop=True)
    write_csv(table, predictions_csv)
    write_json(fit_predictions(table, task), calibration_json)
    write_json(record, settings_json)
    logger.info(
        "task '%s', baseline '%s', seed %d: trained on %d molecules, predicted %d (%.1f s)",
        task.name, baseline, seed, int((molecules["fold"] == "train").sum()), len(table), time.perf_counter() - started,
    )
    return table


# A stored baseline's file (skops, which loads no pickle): scikit-learn's tree arrays are the one type skops does not
# trust by default, because a crafted file could index out of bounds; the workflow trusts it in the files its own
# baseline_model rule writes, and nowhere else.
TRUSTED_MODEL_TYPES = ["sklearn.tree._tree.Tree"]


def save_fitted(fitted: FittedBaseline, path: Path) -> None:
    """A fitted baseline's models and prediction columns, as one skops file."""
    import skops.io

    models = [{"model": label.model, "classes": [np.asarray(name).item() for name in label.classes],
               "only_class": None if label.only_class is None else np.asarray(label.only_class).item()} for label in fitted.models]
    with atomic_path(path) as temporary:
        skops.io.dump({"baseline": fitted.baseline, "columns": fitted.columns, "models": models}, temporary)


def load_fitted(path: Path, task: TaskSpec) -> FittedBaseline:
    """A baseline that `save_fitted` stored, for `task`; any other file is an error naming it."""
    import zipfile

    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        stored = skops.io.load(path, trusted=TRUSTED_MODEL_TYPES)
        models = [LabelModel(model["model"], list(model["classes"]), model["only_class"]) for model in stored["models"]]
        return FittedBaseline(stored["baseline"], task, list(stored["columns"]), models)
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, ValueError, UntrustedTypesFoundException) as error:
        raise InputError(f"{path}: not a stored baseline ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None


def write_fitted(
    molecules_csv: Path, split_csv: Path, fingerprints_npz: Path, settings_json: Path, task: TaskSpec, baseline: str,
    seed: int, threads: int, out_path: Path,
) -> FittedBaseline:
    """`baseline` trained again exactly as the baseline rule trained it (same train fold, settings and random_state),
    stored for scoring libraries, so that every shard of a library is scored by the same fitted models."""
    started = time.perf_counter()
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    bits = read_fingerprints(Path(fingerprints_npz), molecules["mol_id"].to_numpy())
    fitted = fit_baseline(baseline, task, molecules, bits, seed, threads, read_json(settings_json)["settings"])
    save_fitted(fitted, Path(out_path))
    logger.info("task '%s', baseline '%s', seed %d: trained and stored (%.1f s)", task.name, baseline, seed, time.perf_counter() - started)
    return fitted


class BaselineEnsemble:
    """A baseline of one task trained on each split instance's train fold, scoring a library's fingerprints together."""

    def __init__(self, fitted: list[FittedBaseline], calibrations: list[dict], calibration_method: str):
        self.fitted, self.calibrations, self.calibration_method = fitted, calibrations, calibration_method
        task = fitted[0].task
        self.task_type = task.type
        self.names = [column.removeprefix(prediction_header("")) for column in fitted[0].columns]

    def score(self, rows: pd.DataFrame, packed_bits: np.ndarray | None) -> Scores:
        bits = np.unpackbits(np.asarray(packed_bits, dtype=np.uint8), axis=1)
        per_model = [model.predict(bits) for model in self.fitted]
        calibrated = None
        if self.task_type in CALIBRATED_TYPES:
            calibrated = [apply(calibration, self.calibration_method, self.names, values) for calibration, values in zip(self.calibrations, per_model)]
        return ensemble_scores(per_model, calibrated)


def score_library(
    model_paths: list[Path],
    calibration_jsons: list[Path],
    task: TaskSpec,
    calibration_method: str,
    library_csv: Path,
    library_npy: Path,
    similarity_csv: Path,
    out_csv: Path,
) -> int:
    """The library (or a shard of it) scored by a baseline's stored models of every split instance
    (docs/design.md, "Predictions")."""
    fitted = [load_fitted(Path(path), task) for path in model_paths]
    calibrations = [read_json(path) for path in calibration_jsons]
    ensemble = BaselineEnsemble(fitted, calibrations, calibration_method)
    packed = np.load(library_npy, mmap_mode="r")
    return write_scores(ensemble, library_chunks(library_csv), out_csv, packed, similarity_chunks(similarity_csv))
