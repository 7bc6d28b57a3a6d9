"""Hyper-parameter search, the Snakemake way: every trial is known when the DAG is built.

A trial's settings are a point of a scrambled Sobol sequence (scipy.stats.qmc) seeded by `search.seed`, mapped onto
the search space: learning rates on a log scale, other ranges linearly, lists as choices. The first N points do not
depend on how many are drawn, so raising `search.trials` adds trials and changes none. Each trial fine-tunes on the
training fold and is scored on the validation fold alone; the trial with the best mean validation metric over
`search.seeds` gives the settings every configured seed is then fine-tuned with, and only those are tested.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from scipy.stats import qmc

logger = logging.getLogger(__name__)

# How each searchable setting is drawn: from a range [low, high] (log or linear) or from a list of choices.
LOG_RANGES = ("learning_rate",)
LINEAR_RANGES = ("weight_decay", "dropout", "warmup_fraction")
CHOICES = ("batch_size", "max_epochs", "patience", "augment")
DIMENSIONS = (*LOG_RANGES, *LINEAR_RANGES, *CHOICES)  # the order of a trial's coordinates
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range drawn on a log or a linear scale, or a list of choices."""

    name: str
    kind: str  # log | linear | choice
    values: tuple

    def value(self, unit: float) -> Any:
        """The setting at `unit` in [0, 1)."""
        if self.kind == "choice":
            return self.values[min(int(unit * len(self.values)), len(self.values) - 1)]
        low, high = self.values
        if self.kind == "log":
            value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
        else:
            value = low + unit * (high - low)
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class SearchSpace:
    """The searched settings; the others keep their configured values."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def from_config(cls, space: Mapping[str, Sequence]) -> SearchSpace:
        """A `search.space` of fine-tuning settings, in DIMENSIONS order."""
        kinds = {**dict.fromkeys(LOG_RANGES, "log"), **dict.fromkeys(LINEAR_RANGES, "linear"), **dict.fromkeys(CHOICES, "choice")}
        return cls(tuple(Dimension(name, kinds[name], tuple(space[name])) for name in DIMENSIONS if name in space))

    @property
    def names(self) -> list[str]:
        return [dimension.name for dimension in self.dimensions]

    def trials(self, count: int, seed: int) -> list[dict[str, Any]]:
        """The settings of trials 0..count-1; trial i is the same whatever `count` is."""
        if not self.dimensions or count == 0:
            return [{} for _ in range(count)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Sobol's balance needs powers of 2; the prefix is what matters
            points = qmc.Sobol(len(self.dimensions), scramble=True, seed=seed).random(count)
        return [{dimension.name: dimension.value(float(unit)) for dimension, unit in zip(self.dimensions, point)} for point in points]


def merged_space(*spaces: Mapping[str, Sequence] | None) -> SearchSpace:
    """Later spaces override earlier ones key by key (global < task < checkpoint, like `finetune`)."""
    merged: dict[str, Sequence] = {}
    for space in spaces:
        merged.update(space or {})
    return SearchSpace.from_config(merged)


@dataclass(frozen=True)
class TrialResult:
    """One trial fine-tuned with one seed: its validation score."""

    trial: int
    seed: int
    valid_metric: float
    seconds: float
    params: dict


def select(results: Sequence[TrialResult], maximise: bool) -> tuple[int, dict[int, float]]:
    """The trial with the best mean validation metric over its seeds (NaN counts as worst; ties go to the lower
    trial), and every trial's mean."""
    means: dict[int, list[float]] = {}
    for result in results:
        means.setdefault(result.trial, []).append(result.valid_metric)
    mean = {trial: (math.nan if any(math.isnan(value) for value in values) else sum(values) / len(values)) for trial, values in means.items()}
    worst = -math.inf if maximise else math.inf
    key = {trial: (worst if math.isnan(value) else value) for trial, value in mean.items()}
    best = max(sorted(key), key=lambda trial: key[trial]) if maximise else min(sorted(key), key=lambda trial: key[trial])
    return best, mean


def search_in_job(
    space: SearchSpace, trials: int, search_seed: int, seed: int, maximise: bool, score: Callable[[dict], float], name: str
) -> dict:
    """A search inside one job (the baselines'): `score(settings)` fits a trial's settings on the training fold and
    scores them on the validation fold. Settings drawn twice (a choice-only space) are scored once: the same seed
    gives the same model. Returns the record settings.json keeps: the best trial's settings and every trial."""
    results = []
    scored: dict[tuple, float] = {}
    for trial, settings in enumerate(space.trials(trials, search_seed)):
        started = time.perf_counter()
        key = tuple(sorted(settings.items()))
        if key not in scored:
            scored[key] = float(score(settings))
        results.append(TrialResult(trial, seed, scored[key], time.perf_counter() - started, settings))
        logger.info("%s trial %d %s: validation metric %.4f", name, trial, settings, scored[key])
    best, _ = select(results, maximise)
    return {
        "searched": True, "settings": results[best].params, "trial": best,
        "selected_on": "the validation fold; the test fold is never read",
        "trials": [{"trial": result.trial, "params": result.params, "valid_metric": result.valid_metric,
                    "seconds": round(result.seconds, 2)} for result in results],
    }


def apply_trial(params, settings: Mapping[str, Any]):
    """FinetuneParams with a trial's settings in place of the configured ones."""
    return replace(params, **dict(settings))


def select_trial(result_jsons: Sequence[str], maximise: bool, best_json: str) -> dict:
    """best.json from the trials' results: the chosen trial, its full settings and the table of every trial
    (settings, mean validation metric over seeds, seconds), all from the validation fold."""
    from chemlm.io import read_json, write_json

    records = [read_json(path) for path in result_jsons]
    results = [TrialResult(record["trial"], record["seed"], float(record["valid_metric"]), float(record["seconds"]), record["params"]) for record in records]
    best, means = select(results, maximise)
    seconds: dict[int, float] = {}
    for result in results:
        seconds[result.trial] = seconds.get(result.trial, 0.0) + result.seconds
    params = {result.trial: result.params for result in results}
    chosen = {
        "trial": best,
        "params": params[best],
        "valid_metric": means[best],
        "selected_on": "the validation fold (mean over the search seeds); the test fold is never read",
        "maximise": maximise,
        "trials": [{"trial": trial, "params": params[trial], "valid_metric": means[trial], "seconds": round(seconds[trial], 2)}
                   for trial in sorted(means)],
    }
    write_json(chosen, best_json)
    return chosen
