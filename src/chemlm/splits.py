"""Train/valid/test assignment of a task's molecules, and what each fold holds.

Works from the molecules table alone (its `scaffold` column), so no RDKit is needed here:
- `scaffold`: deepchem's ScaffoldSplitter, reproduced exactly (largest scaffold sets to train first).
- `random_scaffold`: chemprop's balanced scaffold split; scaffolds stay whole, the order is seeded.
- `random`: seeded, stratified by class for binary and multi-class tasks.
- `scaffold_cv`, `cluster_cv`, `random_cv`: repeated k-fold cross-validation (the method-comparison guidelines' 5x5):
  each repeat shuffles whole groups (Bemis-Murcko scaffolds; Butina clusters of ECFP4 from chemlm.clusters; single
  molecules, stratified by class where the task has one) into folds of near-equal size; a split instance's test fold
  is one of them, its validation fold is taken from the rest the same grouped way, and the rest is its training fold.
- `predefined`: the folds published with the data (chemlm.predefined matches them to the molecules), one per molecule.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from chemlm.folds import FOLDS, SplitInstance
from chemlm.io import InputError, read_csv
from chemlm.tasks import TaskSpec, TaskType

logger = logging.getLogger(__name__)

CV_METHODS = ("scaffold_cv", "cluster_cv", "random_cv")
SPLIT_METHODS = ("scaffold", "random_scaffold", "random", *CV_METHODS, "predefined")
Fractions = tuple[float, float, float]


def check_fractions(fractions: Sequence[float]) -> Fractions:
    """Three non-negative numbers summing to 1, as (train, valid, test)."""
    given = list(fractions)
    try:
        values = [float(value) for value in given]
    except (TypeError, ValueError):
        raise InputError(f"split fractions must be three numbers (train, valid, test), got {given}") from None
    if len(values) != 3 or not all(math.isfinite(value) for value in values):
        raise InputError(f"split fractions must be three numbers (train, valid, test), got {given}")
    if any(value < 0 for value in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise InputError(f"split fractions must be non-negative and sum to 1, got {given}")
    return values[0], values[1], values[2]


def scaffold_sets(scaffolds: Sequence[str]) -> list[list[int]]:
    """Indices of each scaffold, scaffolds in order of first appearance. Missing scaffolds (acyclic
    molecules, read back from CSV as NaN) are the empty scaffold, as RDKit gives them."""
    sets: dict[str, list[int]] = {}
    for index, scaffold in enumerate(scaffolds):
        key = scaffold if isinstance(scaffold, str) else ""
        sets.setdefault(key, []).append(index)
    return list(sets.values())


def folds_from_indices(n: int, train: list[int], valid: list[int], test: list[int]) -> np.ndarray:
    folds = np.empty(n, dtype=object)
    folds[train], folds[valid], folds[test] = "train", "valid", "test"
    return folds


def scaffold_split(scaffolds: Sequence[str], fractions: Sequence[float]) -> np.ndarray:
    """Fold of each molecule, exactly as deepchem.splits.ScaffoldSplitter.split assigns it.

    Scaffold sets are taken largest first (ties: the later first index first), each to train while it
    fits under frac_train * n, else to valid while it fits under (frac_train + frac_valid) * n, else test.
    """
    frac_train, frac_valid, _ = check_fractions(fractions)
    n = len(scaffolds)
    # The same float expressions as deepchem, so the cut-offs agree to the last bit.
    train_cutoff = frac_train * n
    valid_cutoff = (frac_train + frac_valid) * n
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for indices in sorted(scaffold_sets(scaffolds), key=lambda indices: (len(indices), indices[0]), reverse=True):
        if len(train) + len(indices) > train_cutoff:
            if len(train) + len(valid) + len(indices) > valid_cutoff:
                test += indices
            else:
                valid += indices
        else:
            train += indices
    return folds_from_indices(n, train, valid, test)


def random_scaffold_split(scaffolds: Sequence[str], fractions: Sequence[float], seed: int) -> np.ndarray:
    """Fold of each molecule by chemprop's balanced scaffold split (chemprop.data.scaffold_split, balanced=True).

    Scaffold sets too big for half of valid or test go first, so they land in train; then all sets are
    taken in a seeded random order. Unlike `scaffold_split`, valid and test get a mix of common and rare
    scaffolds, and each seed gives another split. Same membership as chemprop for the same scaffolds and seed.
    """
    frac_train, frac_valid, frac_test = check_fractions(fractions)
    n = len(scaffolds)
    train_size, valid_size, test_size = frac_train * n, frac_valid * n, frac_test * n
    big: list[list[int]] = []
    small: list[list[int]] = []
    for indices in scaffold_sets(scaffolds):
        (big if len(indices) > valid_size / 2 or len(indices) > test_size / 2 else small).append(indices)
    shuffler = random.Random(seed)
    shuffler.shuffle(big)
    shuffler.shuffle(small)
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for indices in big + small:
        if len(train) + len(indices) <= train_size:
            train += indices
        elif len(valid) + len(indices) <= valid_size:
            valid += indices
        else:
            test += indices
    return folds_from_indices(n, train, valid, test)


def fold_sizes(n: int, fractions: Fractions) -> tuple[int, int, int]:
    n_train = round(fractions[0] * n)
    n_test = round(fractions[2] * n)
    return n_train, n - n_train - n_test, n_test


def random_split(
    n: int, fractions: Sequence[float], seed: int, stratify_labels: np.ndarray | None = None
) -> np.ndarray:
    """Fold of each of `n` molecules, seeded; stratified by `stratify_labels` (one class per molecule) if given.

    Stratifying needs every class in every fold; when a class is too rare for that, the split falls back
    to plain random and says so in the log.
    """
    n_train, n_valid, n_test = fold_sizes(n, check_fractions(fractions))
    if stratify_labels is not None:
        try:
            return stratified_split(n, n_valid, n_test, seed, stratify_labels)
        except ValueError as error:
            logger.warning("cannot stratify the random split (%s); splitting without stratification", error)
    order = np.random.default_rng(seed).permutation(n)
    return folds_from_indices(
        n, list(order[:n_train]), list(order[n_train : n_train + n_valid]), list(order[n_train + n_valid :])
    )


def stratified_split(n: int, n_valid: int, n_test: int, seed: int, labels: np.ndarray) -> np.ndarray:
    """Test split off first, then valid off the rest, each by sklearn's stratified shuffle.

    Raises sklearn's ValueError when a class is too rare to reach every fold.
    """
    classes = np.asarray([str(label) for label in labels])  # missing labels become their own class, "nan"
    indices = np.arange(n)
    rest, test = split_off(indices, n_test, seed, classes)
    train, valid = split_off(rest, n_valid, seed, classes[rest])
    return folds_from_indices(n, list(train), list(valid), list(test))


def split_off(indices: np.ndarray, size: int, seed: int, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kept, split off): `size` of `indices` split off, stratified by `classes`."""
    if size == 0:
        return indices, indices[:0]
    kept, taken = train_test_split(indices, test_size=size, random_state=seed, stratify=classes)
    return np.sort(kept), np.sort(taken)


def group_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each molecule, whole groups together: groups too big for half a fold first, then the
    rest in a seeded random order, each to the fold with the fewest molecules so far (near-equal sizes)."""
    names, members = np.unique(groups, return_inverse=True)
    sizes = np.bincount(members, minlength=len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    big = sizes[order] > len(groups) / folds / 2
    order = np.concatenate([order[big][np.argsort(-sizes[order[big]], kind="stable")], order[~big]])
    filled = np.zeros(folds, dtype=int)
    fold_of_group = np.empty(len(names), dtype=int)
    for group in order:
        target = int(np.argmin(filled))
        fold_of_group[group] = target
        filled[target] += sizes[group]
    return fold_of_group[members]


def molecule_folds(n: int, folds: int, seed: int, stratify_labels: np.ndarray | None) -> np.ndarray:
    """The fold of each of `n` single molecules, seeded; stratified by class where labels are given and every class has
    a molecule for each fold (else plain, and the log says so)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    assigned = np.empty(n, dtype=int)
    if stratify_labels is not None:
        classes = np.asarray([str(label) for label in stratify_labels])
        if np.unique(classes, return_counts=True)[1].min() >= folds:
            for fold, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), classes)):
                assigned[test] = fold
            return assigned
        logger.warning("a class has fewer than %d molecules: the folds are not stratified", folds)
    for fold, (_, test) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n))):
        assigned[test] = fold
    return assigned


def cv_split(
    n: int, instance: SplitInstance, groups: np.ndarray | None = None, stratify_labels: np.ndarray | None = None,
) -> np.ndarray:
    """train / valid / test of each of `n` molecules for one (repeat, fold): the repeat's fold is test; of the other
    folds, the fold with the most groups of a second grouping the same way (seeded by repeat and fold) is valid; the
    rest is train. `groups` None: single molecules, stratified by `stratify_labels` where given."""
    folds = instance.folds

    def assign(indices: np.ndarray, seed: int) -> np.ndarray:
        if groups is not None:
            return group_folds(groups[indices], folds, seed)
        labels = stratify_labels[indices] if stratify_labels is not None else None
        return molecule_folds(len(indices), folds, seed, labels)

    everything = np.arange(n)
    test = assign(everything, instance.repeat) == instance.fold
    rest = everything[~test]
    inner = assign(rest, (instance.repeat + 1) * 1009 + instance.fold)
    # the inner fold with the most groups: one that a giant group (ESOL's acyclic molecules, a third of it) fills
    # alone would leave early stopping and calibration one kind of molecule to judge by
    spread = [len(np.unique(groups[rest][inner == fold])) if groups is not None else 0 for fold in range(folds)]
    valid = rest[inner == int(np.argmax(spread))]
    labels = np.full(n, "train", dtype=object)
    labels[test], labels[valid] = "test", "valid"
    return labels


def read_clusters(clusters_csv: str, molecules: pd.DataFrame) -> np.ndarray:
    """The Butina cluster of each molecule (chemlm.clusters), in molecules order."""
    clusters = read_csv(clusters_csv, dtype={"mol_id": str})
    if len(clusters) != len(molecules) or not (clusters["mol_id"].to_numpy() == molecules["mol_id"].astype(str).to_numpy()).all():
        raise InputError(f"{clusters_csv}: its mol_ids do not match the molecules; rerun the clustering")
    return clusters["cluster"].to_numpy()


def read_predefined_folds(folds_csv: str, molecules: pd.DataFrame) -> np.ndarray:
    """The predefined fold of each molecule (chemlm.predefined), in molecules order."""
    folds = read_csv(folds_csv, dtype={"mol_id": str, "fold": str})
    if len(folds) != len(molecules) or not (folds["mol_id"].to_numpy() == molecules["mol_id"].astype(str).to_numpy()).all():
        raise InputError(f"{folds_csv}: its mol_ids do not match the molecules; rerun the fold matching")
    return folds["fold"].to_numpy()


def stratification_labels(molecules: pd.DataFrame, task: TaskSpec) -> np.ndarray | None:
    """The class of each molecule for single-label classification tasks; None where stratifying makes no sense."""
    if task.type in (TaskType.BINARY, TaskType.MULTICLASS):
        return molecules[task.label_columns[0]].to_numpy()
    return None


def check_molecules(molecules: pd.DataFrame, task: TaskSpec, method: str) -> None:
    if method not in SPLIT_METHODS:
        raise InputError(f"unknown split method '{method}'; choose one of: {', '.join(SPLIT_METHODS)}")
    needed = ["mol_id", *task.label_columns] + (["scaffold"] if method in ("scaffold", "random_scaffold", "scaffold_cv") else [])
    for column in needed:
        if column not in molecules.columns:
            raise InputError(
                f"task '{task.name}': molecules table has no column '{column}' (needed by split '{method}')"
            )
    if molecules.empty:
        raise InputError(f"task '{task.name}': no molecules to split")


def assign_folds(
    molecules: pd.DataFrame, task: TaskSpec, method: str, fractions: Sequence[float], instance: SplitInstance,
    clusters: np.ndarray | None = None, predefined: np.ndarray | None = None,
) -> pd.DataFrame:
    """`mol_id, fold` in molecules order for one split instance. The deterministic `scaffold` and `predefined` splits
    ignore the seed; `cluster_cv` needs the Butina cluster of each molecule (chemlm.clusters), `predefined` each
    molecule's fold (chemlm.predefined), in molecules order."""
    check_molecules(molecules, task, method)
    if (method in CV_METHODS) != instance.is_fold:
        raise InputError(f"split '{method}': instance '{instance.name}' is not one of its instances")
    if method == "scaffold":
        folds = scaffold_split(molecules["scaffold"].tolist(), fractions)
    elif method == "random_scaffold":
        folds = random_scaffold_split(molecules["scaffold"].tolist(), fractions, instance.seed)
    elif method == "random":
        folds = random_split(len(molecules), fractions, instance.seed, stratification_labels(molecules, task))
    elif method == "scaffold_cv":
        folds = cv_split(len(molecules), instance, groups=molecules["scaffold"].fillna("").astype(str).to_numpy())
    elif method == "cluster_cv":
        if clusters is None or len(clusters) != len(molecules):
            raise InputError(f"task '{task.name}': split 'cluster_cv' needs the Butina cluster of every molecule")
        folds = cv_split(len(molecules), instance, groups=np.asarray(clusters))
    elif method == "predefined":
        if predefined is None or len(predefined) != len(molecules) or not np.isin(predefined, FOLDS).all():
            raise InputError(f"task '{task.name}': split 'predefined' needs the fold (train, valid or test) of every molecule")
        folds = np.asarray(predefined, dtype=object)
    else:
        folds = cv_split(len(molecules), instance, stratify_labels=stratification_labels(molecules, task))
    assignment = pd.DataFrame({"mol_id": molecules["mol_id"].to_numpy(), "fold": folds.astype(str)})
    sizes = assignment["fold"].value_counts()
    logger.info(
        "task '%s', split '%s', %s: %s",
        task.name,
        method,
        instance.name,
        ", ".join(f"{fold} {sizes.get(fold, 0)}" for fold in FOLDS),
    )
    return assignment


def binary_balance(values: pd.Series) -> dict[str, int]:
    return {
        "positives": int((values == 1).sum()),
        "negatives": int((values == 0).sum()),
        "missing": int(values.isna().sum()),
    }


def class_balance(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().astype(str).value_counts().sort_index()
    return {"classes": {name: int(count) for name, count in counts.items()}, "missing": int(values.isna().sum())}


def value_balance(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(float)
    return {
        "n": len(present),
        "mean": float(present.mean()) if len(present) else None,
        "sd": float(present.std(ddof=1)) if len(present) > 1 else None,
        "missing": int(values.isna().sum()),
    }


BALANCE = {
    TaskType.BINARY: binary_balance,
    TaskType.MULTILABEL: binary_balance,
    TaskType.MULTICLASS: class_balance,
    TaskType.REGRESSION: value_balance,
}


def split_summary(
    molecules: pd.DataFrame, assignment: pd.DataFrame, task: TaskSpec, instance: SplitInstance | None = None,
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """Sizes, scaffold counts (and Butina clusters, where given) and label balance of each fold (binary and
    multi-label: positives, negatives and missing per label; multi-class: count per class; regression: n, mean and sd
    per label); the split instance's repeat and fold where it is one of a cross-validation."""
    same_order = (
        len(assignment) == len(molecules)
        and (assignment["mol_id"].astype(str).to_numpy() == molecules["mol_id"].astype(str).to_numpy()).all()
    )
    if not same_order:
        raise InputError(f"task '{task.name}': the fold assignment does not list the molecules in molecules order")
    folds = assignment["fold"].to_numpy()
    members = {fold: folds == fold for fold in FOLDS}
    summary: dict[str, Any] = {
        "molecules": len(molecules),
        "sizes": {fold: int(mask.sum()) for fold, mask in members.items()},
        "fractions": {fold: float(mask.mean()) for fold, mask in members.items()},
    }
    if "scaffold" in molecules.columns:
        scaffolds = molecules["scaffold"].fillna("")
        fold_scaffolds = {fold: set(scaffolds[mask]) for fold, mask in members.items()}
        summary["scaffolds"] = {fold: len(found) for fold, found in fold_scaffolds.items()}
        # Zero for scaffold splits by construction; for random splits it shows how much the folds share.
        summary["scaffolds_in_several_folds"] = len(
            (fold_scaffolds["train"] & fold_scaffolds["valid"])
            | (fold_scaffolds["train"] & fold_scaffolds["test"])
            | (fold_scaffolds["valid"] & fold_scaffolds["test"])
        )
    if clusters is not None:
        fold_clusters = {fold: set(np.asarray(clusters)[mask]) for fold, mask in members.items()}
        summary["clusters"] = {fold: len(found) for fold, found in fold_clusters.items()}
        summary["clusters_in_several_folds"] = len(
            (fold_clusters["train"] & fold_clusters["valid"]) | (fold_clusters["train"] & fold_clusters["test"])
            | (fold_clusters["valid"] & fold_clusters["test"])
        )
    if instance is not None:
        summary["instance"] = instance.to_dict()
    balance = BALANCE[task.type]
    summary["labels"] = {
        column: {fold: balance(molecules[column][mask]) for fold, mask in members.items()}
        for column in task.label_columns
    }
    return summary
