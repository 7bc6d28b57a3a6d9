"""Fold assignment: scaffold (deepchem order), balanced random scaffold, stratified random, and summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chemlm.folds import SplitInstance
from chemlm.io import InputError
from chemlm.splits import (
    CV_METHODS,
    SPLIT_METHODS,
    assign_folds,
    random_scaffold_split,
    random_split,
    scaffold_split,
    split_summary,
)
from chemlm.tasks import TaskSpec, TaskType

SEED0 = SplitInstance.of_seed(0)

BINARY = TaskSpec("t", "-", "smiles", ("y",), TaskType.BINARY)
MULTICLASS = TaskSpec("t", "-", "smiles", ("kind",), TaskType.MULTICLASS)
MULTILABEL = TaskSpec("t", "-", "smiles", ("a", "b"), TaskType.MULTILABEL)
REGRESSION = TaskSpec("t", "-", "smiles", ("logS",), TaskType.REGRESSION)
FRACTIONS = (0.8, 0.1, 0.1)


def skewed_scaffolds(n_scaffolds: int = 100, seed: int = 0) -> list[str]:
    """The scaffolds of 218 molecules: 100 scaffolds with long-tailed set sizes (40, 20, 13, ... 1), shuffled."""
    sizes = [max(1, 40 // (rank + 1)) for rank in range(n_scaffolds)]
    scaffolds = [f"s{rank}" for rank, size in enumerate(sizes) for _ in range(size)]
    return list(np.random.default_rng(seed).permutation(scaffolds))


def molecules_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    scaffolds = skewed_scaffolds()[:n]
    n = len(scaffolds)
    return pd.DataFrame(
        {
            "mol_id": [f"m{i}" for i in range(n)],
            "smiles": ["C"] * n,
            "scaffold": scaffolds,
            "y": (np.arange(n) % 10 == 0).astype(float),  # 10 % positives
            "kind": np.array(["acid", "base", "salt", "acid"])[np.arange(n) % 4],
            "a": np.where(np.arange(n) % 7 == 0, np.nan, (np.arange(n) % 3 == 0).astype(float)),
            "b": (np.arange(n) % 2).astype(float),
            "logS": rng.normal(0, 1, n),
        }
    )


def folds_of_each_scaffold(scaffolds: list[str], folds: np.ndarray) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for scaffold, fold in zip(scaffolds, folds):
        seen.setdefault(scaffold, set()).add(fold)
    return seen


def test_scaffold_split_keeps_each_scaffold_in_one_fold():
    scaffolds = skewed_scaffolds()
    folds = scaffold_split(scaffolds, FRACTIONS)
    assert all(len(found) == 1 for found in folds_of_each_scaffold(scaffolds, folds).values())
    assert set(folds) == {"train", "valid", "test"}


def test_scaffold_split_follows_deepchem_order_by_hand():
    # Sets, largest first (ties: later first index first): a (0,2,6), "" (3,4; None counts as ""), c (5), b (1).
    # n = 7: train while <= 4.2, then valid while train + valid <= 5.6, else test.
    folds = scaffold_split(["a", "b", "a", "", None, "c", "a"], (0.6, 0.2, 0.2))
    assert folds.tolist() == ["train", "test", "train", "valid", "valid", "train", "train"]


def test_scaffold_split_sizes_respect_cutoffs():
    scaffolds = skewed_scaffolds()
    folds = scaffold_split(scaffolds, FRACTIONS)
    n = len(scaffolds)
    assert (folds == "train").sum() <= 0.8 * n
    assert (folds == "train").sum() + (folds == "valid").sum() <= 0.9 * n
    assert (folds == "train").sum() >= 0.7 * n  # the greedy fill gets close to the target on this data


def test_scaffold_split_puts_the_largest_scaffolds_in_train():
    scaffolds = skewed_scaffolds()
    folds = scaffold_split(scaffolds, FRACTIONS)
    assert set(folds[np.array(scaffolds) == "s0"]) == {"train"}
    assert set(folds[np.array(scaffolds) == "s1"]) == {"train"}


def test_random_scaffold_split_is_balanced_seeded_and_keeps_scaffolds_whole():
    scaffolds = skewed_scaffolds()
    n = len(scaffolds)
    first = random_scaffold_split(scaffolds, FRACTIONS, seed=1)
    assert random_scaffold_split(scaffolds, FRACTIONS, seed=1).tolist() == first.tolist()
    assert random_scaffold_split(scaffolds, FRACTIONS, seed=2).tolist() != first.tolist()
    assert all(len(found) == 1 for found in folds_of_each_scaffold(scaffolds, first).values())
    # Big scaffold sets (more than half of valid or test) always go to train.
    big = [name for name in set(scaffolds) if scaffolds.count(name) > 0.1 * n / 2]
    assert big and all(set(first[np.array(scaffolds) == name]) == {"train"} for name in big)
    for seed in range(5):
        sizes = pd.Series(random_scaffold_split(scaffolds, FRACTIONS, seed)).value_counts()
        assert abs(sizes["train"] - 0.8 * n) <= 0.05 * n
        assert abs(sizes["valid"] - 0.1 * n) <= 0.05 * n
        assert abs(sizes["test"] - 0.1 * n) <= 0.05 * n


def test_random_scaffold_split_mixes_small_scaffolds_into_train():
    # Unlike the deterministic split, the rare scaffolds are not all pushed into valid and test.
    scaffolds = skewed_scaffolds()
    singletons = [name for name in set(scaffolds) if scaffolds.count(name) == 1]
    folds = random_scaffold_split(scaffolds, FRACTIONS, seed=0)
    deterministic = scaffold_split(scaffolds, FRACTIONS)
    in_train = lambda folds: sum(folds[scaffolds.index(name)] == "train" for name in singletons)  # noqa: E731
    assert in_train(folds) > in_train(deterministic)


def test_random_split_sizes_and_seeds():
    folds = random_split(1000, FRACTIONS, seed=3)
    assert pd.Series(folds).value_counts().to_dict() == {"train": 800, "valid": 100, "test": 100}
    assert random_split(1000, FRACTIONS, seed=3).tolist() == folds.tolist()
    assert random_split(1000, FRACTIONS, seed=4).tolist() != folds.tolist()


def test_random_split_is_stratified():
    labels = (np.arange(1000) < 30).astype(float)  # 3 % positives, all at the start
    for seed in range(5):
        folds = random_split(1000, FRACTIONS, seed, stratify_labels=labels)
        positives = pd.Series(folds[labels == 1]).value_counts().to_dict()
        assert positives == {"train": 24, "valid": 3, "test": 3}
        assert pd.Series(folds).value_counts().to_dict() == {"train": 800, "valid": 100, "test": 100}


def test_random_split_falls_back_when_a_class_is_too_rare(caplog):
    labels = np.zeros(100)
    labels[0] = 1  # a single positive cannot be in every fold
    folds = random_split(100, FRACTIONS, 0, stratify_labels=labels)
    assert pd.Series(folds).value_counts().to_dict() == {"train": 80, "valid": 10, "test": 10}
    assert "cannot stratify" in caplog.text


def test_zero_fraction_fold_is_empty():
    assert set(random_split(50, (0.8, 0.0, 0.2), 0, stratify_labels=np.arange(50) % 2)) == {"train", "test"}
    assert set(scaffold_split(skewed_scaffolds(), (0.9, 0.1, 0.0))) == {"train", "valid"}


@pytest.mark.parametrize(
    "fractions", [(0.8, 0.1), (0.8, 0.3, 0.1), (1.2, -0.1, -0.1), (0.8, 0.1, float("nan")), ("a", 0.1, 0.1)]
)
def test_bad_fractions_are_input_errors(fractions):
    with pytest.raises(InputError, match="split fractions"):
        assign_folds(molecules_table(), BINARY, "scaffold", fractions, SEED0)


def test_unknown_method_and_missing_scaffold_column_are_input_errors():
    with pytest.raises(InputError, match="unknown split method 'cluster'"):
        assign_folds(molecules_table(), BINARY, "cluster", FRACTIONS, SEED0)
    with pytest.raises(InputError, match="no column 'scaffold'"):
        assign_folds(molecules_table().drop(columns="scaffold"), BINARY, "scaffold", FRACTIONS, SEED0)


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_assign_folds_lists_molecules_in_order(method):
    molecules = molecules_table()
    instance = SplitInstance.of_fold(5, 0, 1) if method in CV_METHODS else SEED0
    clusters = np.arange(len(molecules)) % 23 if method == "cluster_cv" else None
    predefined = np.array(["train", "train", "valid", "test"])[np.arange(len(molecules)) % 4] if method == "predefined" else None
    assignment = assign_folds(molecules, BINARY, method, FRACTIONS, instance, clusters, predefined)
    assert list(assignment.columns) == ["mol_id", "fold"]
    assert assignment["mol_id"].tolist() == molecules["mol_id"].tolist()
    assert set(assignment["fold"]) == {"train", "valid", "test"}


def test_scaffold_split_reads_acyclic_molecules_back_from_csv(tmp_path):
    # Acyclic molecules have the empty scaffold, which a CSV round trip turns into NaN: still one scaffold.
    molecules = molecules_table()
    molecules.loc[molecules.index[:30], "scaffold"] = ""
    molecules.to_csv(tmp_path / "molecules.csv", index=False)
    reread = pd.read_csv(tmp_path / "molecules.csv")
    assert reread["scaffold"].isna().sum() == 30
    before = assign_folds(molecules, BINARY, "scaffold", FRACTIONS, SEED0)
    after = assign_folds(reread, BINARY, "scaffold", FRACTIONS, SEED0)
    assert after["fold"].tolist() == before["fold"].tolist()


def test_summary_of_a_binary_split():
    molecules = molecules_table()
    assignment = assign_folds(molecules, BINARY, "random", FRACTIONS, SEED0)
    summary = split_summary(molecules, assignment, BINARY)
    assert summary["molecules"] == 200
    assert summary["sizes"] == {"train": 160, "valid": 20, "test": 20}
    assert summary["fractions"] == {"train": 0.8, "valid": 0.1, "test": 0.1}
    assert summary["labels"]["y"]["valid"] == {"positives": 2, "negatives": 18, "missing": 0}
    assert sum(summary["labels"]["y"][fold]["positives"] for fold in ("train", "valid", "test")) == 20
    assert set(summary["scaffolds"]) == {"train", "valid", "test"}
    assert summary["scaffolds_in_several_folds"] > 0  # a random split shares scaffolds between folds


def test_summary_of_a_scaffold_split_counts_scaffolds_per_fold():
    molecules = molecules_table()
    assignment = assign_folds(molecules, BINARY, "scaffold", FRACTIONS, SEED0)
    summary = split_summary(molecules, assignment, BINARY)
    for fold in ("train", "valid", "test"):
        expected = molecules.loc[assignment["fold"] == fold, "scaffold"].nunique()
        assert summary["scaffolds"][fold] == expected
    assert summary["scaffolds_in_several_folds"] == 0


def test_summary_label_balance_per_task_type():
    molecules = molecules_table()
    assignment = pd.DataFrame({"mol_id": molecules["mol_id"], "fold": ["train"] * 100 + ["valid"] * 50 + ["test"] * 50})
    multilabel = split_summary(molecules, assignment, MULTILABEL)["labels"]
    a_train = molecules["a"][:100]
    assert multilabel["a"]["train"] == {
        "positives": int((a_train == 1).sum()),
        "negatives": int((a_train == 0).sum()),
        "missing": int(a_train.isna().sum()),
    }
    assert multilabel["a"]["train"]["missing"] > 0
    assert set(multilabel) == {"a", "b"}

    multiclass = split_summary(molecules, assignment, MULTICLASS)["labels"]["kind"]
    assert multiclass["valid"] == {"classes": {"acid": 25, "base": 13, "salt": 12}, "missing": 0}

    regression = split_summary(molecules, assignment, REGRESSION)["labels"]["logS"]["test"]
    test_values = molecules["logS"][150:]
    assert regression["n"] == 50
    assert regression["mean"] == pytest.approx(test_values.mean())
    assert regression["sd"] == pytest.approx(test_values.std())


def test_summary_rejects_an_assignment_in_another_order():
    molecules = molecules_table()
    assignment = assign_folds(molecules, BINARY, "scaffold", FRACTIONS, SEED0).iloc[::-1]
    with pytest.raises(InputError, match="molecules order"):
        split_summary(molecules, assignment, BINARY)


def cv_assignments(method: str, folds: int = 5, repeat: int = 0, clusters=None) -> list[pd.DataFrame]:
    molecules = molecules_table()
    return [assign_folds(molecules, BINARY, method, FRACTIONS, SplitInstance.of_fold(folds, repeat, fold), clusters)
            for fold in range(folds)]


@pytest.mark.parametrize("method", CV_METHODS)
def test_each_repeat_tests_every_molecule_once_and_keeps_groups_whole(method):
    molecules = molecules_table()
    clusters = np.arange(len(molecules)) % 23 if method == "cluster_cv" else None
    assignments = cv_assignments(method, clusters=clusters)
    tested = np.stack([(assignment["fold"] == "test").to_numpy() for assignment in assignments])
    assert (tested.sum(axis=0) == 1).all()  # the folds of a repeat partition the molecules
    sizes = tested.sum(axis=1)
    assert sizes.max() - sizes.min() <= 0.1 * len(molecules)  # near-equal folds
    groups = {"scaffold_cv": molecules["scaffold"].to_numpy(), "cluster_cv": clusters}.get(method)
    for assignment in assignments:
        folds = assignment["fold"].to_numpy()
        assert set(folds) == {"train", "valid", "test"} and (folds == "valid").sum() > 0.1 * len(folds)
        if groups is not None:  # no scaffold or cluster in two folds of an instance
            assert pd.DataFrame({"group": groups, "fold": folds}).groupby("group")["fold"].nunique().max() == 1
    if method == "random_cv":  # stratified: each test fold has its share of positives
        positives = [molecules["y"][assignment["fold"].to_numpy() == "test"].mean() for assignment in assignments]
        assert max(positives) - min(positives) < 0.05


def test_repeats_shuffle_differently_and_the_same_repeat_again_the_same():
    first, again, other = cv_assignments("scaffold_cv", repeat=0), cv_assignments("scaffold_cv", repeat=0), cv_assignments("scaffold_cv", repeat=1)
    assert all(a.equals(b) for a, b in zip(first, again))
    assert not all(a["fold"].equals(b["fold"]) for a, b in zip(first, other))


def test_a_split_instance_of_another_kind_is_refused():
    with pytest.raises(InputError, match="split 'scaffold_cv': instance 'seed0' is not one of its instances"):
        assign_folds(molecules_table(), BINARY, "scaffold_cv", FRACTIONS, SEED0)
    with pytest.raises(InputError, match="needs the Butina cluster of every molecule"):
        assign_folds(molecules_table(), BINARY, "cluster_cv", FRACTIONS, SplitInstance.of_fold(5, 0, 0))


def test_cv_summary_names_the_instance_and_counts_clusters():
    molecules = molecules_table()
    clusters = np.arange(len(molecules)) % 23
    instance = SplitInstance.of_fold(5, 2, 3)
    assignment = assign_folds(molecules, BINARY, "cluster_cv", FRACTIONS, instance, clusters)
    summary = split_summary(molecules, assignment, BINARY, instance, clusters)
    assert summary["instance"] == {"name": "repeat2-fold3", "seed": 2, "folds": 5, "repeat": 2, "fold": 3}
    assert summary["clusters_in_several_folds"] == 0 and sum(summary["clusters"].values()) == 23
    assert summary["labels"]["y"]["test"]["positives"] == int(molecules["y"][assignment["fold"].to_numpy() == "test"].sum())


def test_a_giant_group_is_never_the_whole_validation_fold():
    """ESOL's acyclic molecules (the empty scaffold) are a third of it: a test fold of their own, never the validation."""
    molecules = molecules_table()
    molecules.loc[molecules.index[:70], "scaffold"] = ""
    for repeat in range(3):
        for assignment in cv_assignments_of(molecules, repeat):
            valid = molecules["scaffold"].to_numpy()[assignment["fold"].to_numpy() == "valid"]
            assert len(set(valid)) > 1


def cv_assignments_of(molecules: pd.DataFrame, repeat: int) -> list[pd.DataFrame]:
    return [assign_folds(molecules, BINARY, "scaffold_cv", FRACTIONS, SplitInstance.of_fold(5, repeat, fold)) for fold in range(5)]
