"""Fingerprint baselines on the transformers' splits and seeds: ECFP4 with a random forest or a linear model, and
LightGBM on ECFP4 counts and RDKit's 2-D descriptors.

Predictions are written in exactly the fine-tuning format (docs/design.md, item 5), so that evaluation,
the summary and the report treat a baseline like any fine-tuned checkpoint. Multi-class tasks get one
native multi-class model; multi-label and multi-output regression tasks one model per label, trained on
the molecules where that label is present. Only scikit-learn and LightGBM: no rdkit (features come from a file),
no torch.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from chemlm.calibration import CALIBRATED_TYPES, apply
from chemlm.config import BASELINES
from chemlm.metrics import HIGHER_IS_BETTER, validation_score
from chemlm.run_files import PREDICTED_FOLDS, write_run_files
from chemlm.search import Dimension, SearchSpace, search_in_job
from chemlm.folds import load_fold_tables
from chemlm.io import InputError, atomic_path, read_csv, read_json

from chemlm.scoring import Scores, ensemble_scores, library_chunks, similarity_chunks, write_scores
from chemlm.tasks import TaskSpec, TaskType, prediction_header

logger = logging.getLogger(__name__)

LOGREG_MAX_ITER = 10_000


def check_mol_ids(path: Path, file_ids: np.ndarray, mol_ids: np.ndarray, rule: str, against: str = "molecules.csv") -> None:
    if len(file_ids) != len(mol_ids) or not (file_ids == np.asarray(mol_ids, dtype=str)).all():
        raise InputError(f"{path}: its mol_ids do not match {against}; rerun the {rule}")


def read_fingerprints(path: Path, mol_ids: np.ndarray) -> np.ndarray:
    """ECFP4 bits (n, 2048) as uint8 0/1 of `mol_ids`, which must be the file's molecules in its order."""
    try:
        with np.load(path, allow_pickle=False) as data:
            file_ids, packed, n_bits = data["mol_id"].astype(str), data["bits"], int(data["n_bits"])
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a fingerprints file ({error})") from None
    check_mol_ids(path, file_ids, mol_ids, "fingerprints")
    return np.unpackbits(packed, axis=1, count=n_bits)


def count_features(counts: np.ndarray, descriptors: np.ndarray) -> np.ndarray:
    """LightGBM's feature matrix: the ECFP4 counts, then the descriptors (NaN: missing)."""
    return np.hstack([counts.astype(np.float32), descriptors.astype(np.float32)])


def read_count_features(path: Path, mol_ids: np.ndarray | None = None, library_rows: np.ndarray | None = None) -> np.ndarray:
    """The LightGBM features (chemlm.descriptors.write_count_features) of a task's `mol_ids` or a library shard's
    `library_rows`, which must be the file's, in its order (neither given: the file as it is)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            file_ids, counts, descriptors = data["mol_id"].astype(str), data["counts"], data["descriptors"]
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a features file of ECFP4 counts and descriptors ({error})") from None
    if mol_ids is not None:
        check_mol_ids(path, file_ids, mol_ids, "descriptors")
    if library_rows is not None:
        check_mol_ids(path, file_ids, library_rows, "library_descriptors", "the shard's rows")
    return count_features(counts, descriptors)


def read_features(path: Path, mol_ids: np.ndarray, baseline: str) -> np.ndarray:
    """The baseline's features of `mol_ids` from its features file (chemlm.layout.baseline_features)."""
    return read_count_features(path, mol_ids) if baseline == "lgbm" else read_fingerprints(path, mol_ids)


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
# LightGBM: leaves per tree, learning rate, the most boosting rounds (early stopping on the validation fold ends
# sooner) and the share of features each tree sees.
LGBM_SPACE = SearchSpace((
    Dimension("num_leaves", "choice", (15, 31, 63)),
    Dimension("learning_rate", "log", (0.01, 0.2)),
    Dimension("n_estimators", "choice", (250, 500, 1000)),
    Dimension("feature_fraction", "choice", (0.1, 0.3, 0.6, 1.0)),
))
SEARCH_SPACES |= {("lgbm", True): LGBM_SPACE, ("lgbm", False): LGBM_SPACE}
# Boosting stops when the validation fold's loss has not improved for this many rounds; the best round is kept.
LGBM_EARLY_STOPPING_ROUNDS = 50


def default_settings(baseline: str, task_type: TaskType, trees: int) -> dict:
    """Without a search: `trees` trees trying sqrt(2048) bits per split for classification and a third of them for
    regression (Breiman's recommendations, as MoleculeNet's forests); C = 1; LightGBM's 31 leaves at a learning rate
    of 0.05 for at most 1,000 rounds (early stopping decides), each tree seeing 30% of the 2,247 features."""
    if baseline == "ecfp4_rf":
        return {"n_estimators": trees, "max_features": "sqrt" if task_type.is_classification else 0.33}
    if baseline == "lgbm":
        return {"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 1000, "feature_fraction": 0.3}
    return {"C": 1.0}


def make_model(baseline: str, task_type: TaskType, seed: int, threads: int, settings: dict) -> BaseEstimator:
    """An unfitted scikit-learn (or LightGBM's scikit-learn) model; classifiers weight classes by inverse frequency,
    like fine-tuning. A ridge regression (regression tasks) takes `C` as its inverse regularisation, alpha = 1 / C.
    LightGBM is deterministic for a seed and thread count (`deterministic`, row-wise histograms)."""
    classification = task_type.is_classification
    if baseline == "ecfp4_rf":
        forest = dict(n_estimators=settings["n_estimators"], max_features=settings["max_features"], n_jobs=threads, random_state=seed)
        return RandomForestClassifier(**forest, class_weight="balanced") if classification else RandomForestRegressor(**forest)
    if baseline == "ecfp4_logreg":
        if classification:
            return LogisticRegression(C=settings["C"], max_iter=LOGREG_MAX_ITER, class_weight="balanced")
        return Ridge(alpha=1.0 / settings["C"])
    if baseline == "lgbm":
        import lightgbm

        boosting = dict(
            num_leaves=settings["num_leaves"], learning_rate=settings["learning_rate"], n_estimators=settings["n_estimators"],
            colsample_bytree=settings["feature_fraction"], random_state=seed, n_jobs=threads, deterministic=True,
            force_row_wise=True, verbose=-1,
        )
        return lightgbm.LGBMClassifier(**boosting, class_weight="balanced") if classification else lightgbm.LGBMRegressor(**boosting)
    raise InputError(f"baseline '{baseline}': expected one of {', '.join(BASELINES)}")


def features(values: np.ndarray, baseline: str) -> np.ndarray | sparse.csr_matrix:
    """Trees take dense float32 values; linear models a sparse matrix (about 2 % of ECFP4 bits are set)."""
    if baseline == "ecfp4_logreg":
        return sparse.csr_matrix(values, dtype=np.float64)
    return values.astype(np.float32, copy=False)


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


def is_lightgbm(model: BaseEstimator) -> bool:
    """A LightGBM estimator (told apart without importing lightgbm, which only LightGBM's jobs load)."""
    return type(model).__module__.startswith("lightgbm")


def fit_label(model: BaseEstimator, x_train, y_train: np.ndarray, classes: list, context: str, valid: tuple | None = None) -> LabelModel:
    """`model` fitted; with one class in training there is nothing to learn: that class gets probability 1.
    A LightGBM model stops boosting on `valid` = (x, y), the validation fold's molecules with this label."""
    if classes:
        present = np.unique(y_train)
        if len(present) == 1:
            logger.warning("%s: only class %s in the training fold; predicting it with probability 1", context, present[0])
            return LabelModel(None, classes, present[0])
    if is_lightgbm(model):
        return LabelModel(fit_boosting(model, x_train, y_train, valid, context), classes)
    return LabelModel(model.fit(x_train, y_train), classes)


def fit_boosting(model: BaseEstimator, x_train, y_train: np.ndarray, valid: tuple | None, context: str) -> BaseEstimator:
    """LightGBM boosting until the validation fold's metric has not improved for LGBM_EARLY_STOPPING_ROUNDS rounds,
    keeping the best round. The metric is fine-tuning's where LightGBM has it (chemlm.metrics.validation_score: AUROC
    of a binary label, RMSE), log loss for multi-class (macro-F1 is not smooth enough to stop on) and for a validation
    fold with one class. Validation molecules of a class the training fold lacks are left out (the model cannot
    predict it); without validation molecules it boosts every round."""
    import lightgbm

    x_valid, y_valid = valid if valid is not None else (None, np.empty(0))
    if hasattr(model, "predict_proba"):
        known = np.isin(y_valid, np.unique(y_train))
        x_valid, y_valid = (x_valid[known], y_valid[known]) if len(y_valid) else (x_valid, y_valid)
    if not len(y_valid):
        logger.warning("%s: no validation molecules; LightGBM boosts all %d rounds", context, model.n_estimators)
        return model.fit(x_train, y_train)
    if not hasattr(model, "predict_proba"):
        model.set_params(metric="rmse")
    elif len(np.unique(y_train)) > 2:
        model.set_params(metric="multi_logloss")
    else:
        model.set_params(metric="auc" if len(np.unique(y_valid)) == 2 else "binary_logloss")
    # eval_set, not LightGBM 4.7's eval_X/eval_y, which its classifier does not encode (string classes fail)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The argument 'eval_set' is deprecated")
        model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)],
                  callbacks=[lightgbm.early_stopping(LGBM_EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)])
    logger.info("%s: LightGBM kept round %d of %d", context, model.best_iteration_, model.n_estimators)
    return model


@dataclass
class FittedBaseline:
    """A baseline trained on a train fold: prediction columns and their models, for any molecules' features."""

    baseline: str
    task: TaskSpec
    columns: list[str]
    models: list[LabelModel]

    def predict(self, values: np.ndarray) -> np.ndarray:
        """(n, columns) probabilities of the positive class (multi-class: of each class) or values, from the
        baseline's features (`read_features`)."""
        x = features(values, self.baseline)
        if self.task.type is TaskType.MULTICLASS:
            return self.models[0].predict(x)
        if self.task.type is TaskType.REGRESSION:
            return np.column_stack([model.predict(x)[:, 0] for model in self.models])
        return np.column_stack([model.predict(x)[:, 1] for model in self.models])


def fit_baseline(
    baseline: str, task: TaskSpec, molecules: pd.DataFrame, values: np.ndarray, seed: int, threads: int, settings: dict
) -> FittedBaseline:
    """`baseline` with `settings` trained on the train fold of `molecules` (with its `fold` column; LightGBM stops on
    its valid fold); `values` (its features) in molecules order."""
    x = features(values, baseline)
    train, valid = ((molecules["fold"] == fold).to_numpy() for fold in ("train", "valid"))

    def model() -> BaseEstimator:
        return make_model(baseline, task.type, seed, threads, settings)

    def labelled(fold: np.ndarray, label: str, kind: type) -> tuple:
        rows = fold & molecules[label].notna().to_numpy()
        labels = molecules.loc[rows, label]
        return x[rows], (labels.astype(str) if kind is str else labels.astype(float).astype(kind)).to_numpy()

    if task.type is TaskType.MULTICLASS:
        label = task.label_columns[0]
        # Class names and their order as fine-tuning has them (LabelEncoding.fit).
        classes = sorted(molecules[label].dropna().astype(str).unique())
        fitted = fit_label(model(), *labelled(train, label, str), classes, f"label '{label}'", labelled(valid, label, str))
        return FittedBaseline(baseline, task, [prediction_header(name) for name in classes], [fitted])
    kind, classes = (float, []) if task.type is TaskType.REGRESSION else (int, [0, 1])
    models = [fit_label(model(), *labelled(train, label, kind), classes, f"label '{label}'", labelled(valid, label, kind))
              for label in task.label_columns]
    return FittedBaseline(baseline, task, [prediction_header(label) for label in task.label_columns], models)


def search_settings(
    baseline: str, task: TaskSpec, molecules: pd.DataFrame, values: np.ndarray, seed: int, threads: int, trials: int, search_seed: int
) -> dict:
    """The baseline's search: each trial's settings trained on the train fold and scored on the valid fold alone."""
    valid = (molecules["fold"] == "valid").to_numpy()

    def score(settings: dict) -> float:
        fitted = fit_baseline(baseline, task, molecules, values, seed, threads, settings)
        return validation_score(task.type, validation_truth(task, molecules[valid], fitted), fitted.predict(values[valid]))

    space = SEARCH_SPACES[baseline, task.type.is_classification]
    return search_in_job(space, trials, search_seed, seed, HIGHER_IS_BETTER[task.type], score, baseline)


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
    features_npz: Path,
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
    values = read_features(Path(features_npz), molecules["mol_id"].to_numpy(), baseline)
    record = {"searched": search is not None, "settings": default_settings(baseline, task.type, trees), "trials": []}
    if search is not None:
        record = search_settings(baseline, task, molecules, values, seed, threads, *search)
    record["threads"] = threads  # LightGBM's trees depend on it: the stored model (write_fitted) is fitted with it again
    fitted = fit_baseline(baseline, task, molecules, values, seed, threads, record["settings"])
    predicted = molecules["fold"].isin(PREDICTED_FOLDS).to_numpy()
    table = write_run_files(task, molecules[predicted], fitted.columns, fitted.predict(values[predicted]), record,
                            predictions_csv, calibration_json, settings_json)
    logger.info(
        "task '%s', baseline '%s', seed %d: trained on %d molecules, predicted %d (%.1f s)",
        task.name, baseline, seed, int((molecules["fold"] == "train").sum()), len(table), time.perf_counter() - started,
    )
    return table


# A stored baseline's file (skops, which loads no pickle): scikit-learn's tree arrays are the one type skops does not
# trust by default, because a crafted file could index out of bounds; the workflow trusts it in the files its own
# baseline_model rule writes, and nowhere else.
TRUSTED_MODEL_TYPES = ["sklearn.tree._tree.Tree"]


@dataclass
class StoredBooster:
    """A LightGBM model read back from its own text format (no pickle), predicting as the fitted estimator did."""

    booster: object  # lightgbm.Booster
    classes_: list | None  # the classes in LightGBM's output order; None for regression

    @classmethod
    def from_text(cls, text: str, classes: list | None) -> StoredBooster:
        import lightgbm

        return cls(lightgbm.Booster(model_str=text), classes)

    def predict(self, x) -> np.ndarray:
        return self.booster.predict(x)

    def predict_proba(self, x) -> np.ndarray:
        probabilities = self.booster.predict(x)
        return np.column_stack([1.0 - probabilities, probabilities]) if probabilities.ndim == 1 else probabilities


def stored_model(model: BaseEstimator | None) -> dict:
    """A label's model as save_fitted stores it: LightGBM's as its text (its best round's trees), others as they are."""
    if model is not None and is_lightgbm(model):
        classes = [np.asarray(name).item() for name in model.classes_] if hasattr(model, "classes_") else None
        return {"model": None, "lgbm_model": model.booster_.model_to_string(), "lgbm_classes": classes}
    return {"model": model}


def loaded_model(stored: dict) -> BaseEstimator | StoredBooster | None:
    if stored.get("lgbm_model") is not None:
        return StoredBooster.from_text(stored["lgbm_model"], stored["lgbm_classes"])
    return stored["model"]


def save_fitted(fitted: FittedBaseline, path: Path) -> None:
    """A fitted baseline's models and prediction columns, as one skops file."""
    import skops.io

    models = [{**stored_model(label.model), "classes": [np.asarray(name).item() for name in label.classes],
               "only_class": None if label.only_class is None else np.asarray(label.only_class).item()} for label in fitted.models]
    with atomic_path(path) as temporary:
        skops.io.dump({"baseline": fitted.baseline, "columns": fitted.columns, "models": models,
                       "task": {"name": fitted.task.name, "type": fitted.task.type.value, "labels": list(fitted.task.label_columns)}}, temporary)


def load_fitted(path: Path, task: TaskSpec | None = None) -> FittedBaseline:
    """A baseline that `save_fitted` stored, for `task` (by default the task it was stored with, as a command outside
    the workflow reads it); any other file is an error naming it."""
    import zipfile

    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        stored = skops.io.load(path, trusted=TRUSTED_MODEL_TYPES)
        models = [LabelModel(loaded_model(model), list(model["classes"]), model["only_class"]) for model in stored["models"]]
        if task is None:
            stored_task = stored["task"]
            task = TaskSpec(stored_task["name"], str(path), None, tuple(stored_task["labels"]), TaskType(stored_task["type"]))
        return FittedBaseline(stored["baseline"], task, list(stored["columns"]), models)
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, ValueError, UntrustedTypesFoundException) as error:
        raise InputError(f"{path}: not a stored baseline ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None


def write_fitted(
    molecules_csv: Path, split_csv: Path, features_npz: Path, settings_json: Path, task: TaskSpec, baseline: str,
    seed: int, out_path: Path,
) -> FittedBaseline:
    """`baseline` trained again exactly as the baseline rule trained it (same train fold, settings, random_state and
    threads), stored for scoring libraries, so that every shard of a library is scored by the same fitted models."""
    started = time.perf_counter()
    molecules = load_fold_tables(Path(molecules_csv), Path(split_csv))
    values = read_features(Path(features_npz), molecules["mol_id"].to_numpy(), baseline)
    record = read_json(settings_json)
    fitted = fit_baseline(baseline, task, molecules, values, seed, record["threads"], record["settings"])
    save_fitted(fitted, Path(out_path))
    logger.info("task '%s', baseline '%s', seed %d: trained and stored (%.1f s)", task.name, baseline, seed, time.perf_counter() - started)
    return fitted


class BaselineEnsemble:
    """A baseline of one task trained on each split instance's train fold, scoring a library's features together:
    packed ECFP4 bits (the ECFP4 baselines) or ECFP4 counts and descriptors (LightGBM), row for row."""

    def __init__(self, fitted: list[FittedBaseline], calibrations: list[dict], calibration_method: str):
        self.fitted, self.calibrations, self.calibration_method = fitted, calibrations, calibration_method
        task = fitted[0].task
        self.task_type = task.type
        self.names = [column.removeprefix(prediction_header("")) for column in fitted[0].columns]

    def score(self, rows: pd.DataFrame, library_features: np.ndarray | None) -> Scores:
        values = np.asarray(library_features)
        if self.fitted[0].baseline != "lgbm":
            values = np.unpackbits(values.astype(np.uint8, copy=False), axis=1)
        per_model = [model.predict(values) for model in self.fitted]
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
    library_features: Path,
    similarity_csv: Path | None,
    out_csv: Path,
) -> int:
    """The library (or a shard of it) scored by a baseline's stored models of every split instance
    (docs/design.md, "Predictions"); `library_features` is the shard's file chemlm.layout.library_features names."""
    fitted = [load_fitted(Path(path), task) for path in model_paths]
    calibrations = [read_json(path) for path in calibration_jsons]
    ensemble = BaselineEnsemble(fitted, calibrations, calibration_method)
    if fitted[0].baseline == "lgbm":
        rows = read_csv(library_csv, usecols=["row"], dtype={"row": str})["row"].to_numpy()
        values = read_count_features(Path(library_features), library_rows=rows)
    else:
        values = np.load(library_features, mmap_mode="r")
    similarity = similarity_chunks(similarity_csv) if similarity_csv is not None else None
    return write_scores(ensemble, library_chunks(library_csv), out_csv, values, similarity)
