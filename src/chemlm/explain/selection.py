"""Which test molecules to explain: those a chemist would look at first, from every model's test predictions of one
split instance. No RDKit, no torch.

- `models disagree`: the largest sd over the models of the explained output (a probability, or a value);
- `confident true positive`: a positive (multi-class: any molecule) with the highest mean probability of its class;
- `confident false positive`: a negative with the highest mean probability of the positive class (multi-class: the
  highest mean probability of a class it is not);
- `most uncertain`: the mean probability nearest 0.5 (multi-class: the smallest margin between the two most probable
  classes); for regression `largest error` takes its place: the largest mean absolute error.
A molecule is listed once, under the first reason that picks it. Where the study scores libraries, each model's
top-ranked library molecules join them (`top of <library> by <model>`), named `<library>:<id>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from chemlm.io import InputError, read_csv
from chemlm.tasks import TaskSpec, TaskType, label_header, prediction_header

SELECTED_COLUMNS = ["id", "smiles", "reason", "target", "truth", "mean", "sd"]


def test_predictions(paths: Mapping[str, str | Path], task: TaskSpec) -> dict[str, pd.DataFrame]:
    """Each model's test-fold predictions, indexed by mol_id, every model's rows in the first one's order."""
    text = {label_header(task.label_columns[0]): str} if task.type is TaskType.MULTICLASS else {}
    tables = {}
    for model, path in paths.items():
        table = read_csv(path, dtype={"mol_id": str, "fold": str, **text})
        tables[model] = table[table["fold"] == "test"].set_index("mol_id")
    order = next(iter(tables.values())).index
    if any(set(table.index) != set(order) for table in tables.values()):
        raise InputError(f"task '{task.name}': the models' predictions are not of the same test molecules")
    return {model: table.loc[order] for model, table in tables.items()}


def explained_scores(tables: dict[str, pd.DataFrame], task: TaskSpec) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(target per molecule, truth per molecule, models x molecules score of that target): a binary or multi-label
    task's first label and its probability, a multi-class task's true class and its probability, a regression task's
    first label and its value."""
    first = next(iter(tables.values()))
    label = task.label_columns[0]
    truth = first[label_header(label)]
    if task.type is TaskType.MULTICLASS:
        target = truth.astype(str)
        scores = pd.DataFrame({model: [table.at[mol_id, prediction_header(name)] for mol_id, name in target.items()]
                               for model, table in tables.items()}, index=first.index)
    else:
        target = pd.Series(label, index=first.index)
        scores = pd.DataFrame({model: table.loc[first.index, prediction_header(label)] for model, table in tables.items()})
    return target, truth, scores


def class_probabilities(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    columns = [column for column in table.columns if column.startswith(prediction_header(""))]
    return [column.removeprefix(prediction_header("")) for column in columns], table[columns].to_numpy(dtype=float)


def margin(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Per molecule, the mean over models of the gap between its two most probable classes."""
    gaps = [np.diff(np.sort(class_probabilities(table)[1], axis=1)[:, -2:], axis=1)[:, 0] for table in tables.values()]
    return pd.Series(np.mean(gaps, axis=0), index=next(iter(tables.values())).index)


def wrong_class_probability(tables: dict[str, pd.DataFrame], target: pd.Series) -> pd.Series:
    """Per molecule, the mean over models of the highest probability of a class it is not."""
    highest = []
    for table in tables.values():
        classes, probabilities = class_probabilities(table)
        probabilities[np.arange(len(table)), [classes.index(name) for name in target]] = -np.inf
        highest.append(probabilities.max(axis=1))
    return pd.Series(np.mean(highest, axis=0), index=target.index)


def select_molecules(paths: Mapping[str, str | Path], molecules_csv: str | Path, task: TaskSpec, per_reason: int) -> pd.DataFrame:
    """`per_reason` test molecules for each reason (module docstring), with their SMILES, the target explained, the
    truth and the models' mean and sd of its score."""
    tables = test_predictions(paths, task)
    observed = next(iter(tables.values()))[label_header(task.label_columns[0])].notna().to_numpy()  # of the label explained
    tables = {model: table[observed] for model, table in tables.items()}
    target, truth, scores = explained_scores(tables, task)
    mean, sd = scores.mean(axis=1), scores.std(axis=1, ddof=0)
    disagreement = sd.where(sd > 0)  # one model, or models that agree, disagree on nothing
    if task.type is TaskType.REGRESSION:
        reasons = {"models disagree": disagreement, "largest error": (scores.sub(truth.astype(float), axis=0)).abs().mean(axis=1)}
    elif task.type is TaskType.MULTICLASS:
        wrong = wrong_class_probability(tables, target)
        reasons = {"models disagree": disagreement, "confident true positive": mean.where(mean > wrong),
                   "confident false positive": wrong.where(wrong > mean), "most uncertain": -margin(tables)}
    else:
        positive = truth.astype(float) == 1
        reasons = {"models disagree": disagreement, "confident true positive": mean.where(positive), "confident false positive": mean.where(~positive),
                   "most uncertain": -(mean - 0.5).abs()}
    smiles = read_csv(molecules_csv, dtype={"mol_id": str}).set_index("mol_id")["smiles"]
    chosen: list[list] = []
    taken: set[str] = set()
    for reason, ranking in reasons.items():
        ranked = ranking.dropna().sort_values(ascending=False, kind="stable")
        for mol_id in [mol_id for mol_id in ranked.index if mol_id not in taken][:per_reason]:
            taken.add(mol_id)
            chosen.append([mol_id, smiles[mol_id], reason, target[mol_id], truth[mol_id], mean[mol_id], sd[mol_id]])
    return pd.DataFrame(chosen, columns=SELECTED_COLUMNS)


def library_tops(predictions: Mapping[tuple[str, str], str | Path], per_model: int) -> pd.DataFrame:
    """Each (library, model)'s `per_model` top-ranked valid molecules (chemlm.scoring's rank), explained for the
    label or class they are ranked by; a molecule several models rank high is listed once."""
    from chemlm.scoring import rank_column, top_predictions

    rows, taken = [], set()
    for (library, model), path in predictions.items():
        top = top_predictions(path, per_model)
        if top.empty:
            continue
        rank = rank_column(list(top.columns))
        name = rank.split(":", 1)[1]
        for _, row in top.iterrows():
            mol_id = f"{library}:{row['id']}"
            if mol_id not in taken:
                taken.add(mol_id)
                rows.append([mol_id, row["smiles"], f"top of {library} by {model}", name, None, row[f"mean:{name}"], row[f"sd:{name}"]])
    return pd.DataFrame(rows, columns=SELECTED_COLUMNS)
