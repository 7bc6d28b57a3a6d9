"""Is the difference real? Models compared over the same split instances, as the field's guidelines ask (Ash et al.,
J. Chem. Inf. Model. 2025, 65, 9398; their code: polaris-hub/polaris-method-comparison).

The input is a long table: one row per method, split instance (the subject: a seed of one split, or a fold of a
repeated cross-validation) and metric value. For each metric:
1. the subjects every method has a value for, as a subjects x methods table (others are left out and counted);
2. repeated-measures ANOVA with the subject as the block, and its checks: Levene's test across the methods and the
   ratio of the largest to the smallest variance (above 3 fails);
3. where the checks pass, Tukey's HSD for every pair with the ANOVA's residual mean square: simultaneous intervals
   at family-wise `alpha`, as the guidelines' `rm_tukey_hsd`; where they fail, the Friedman test and, where it
   rejects, Conover's post-hoc test with Holm's correction (as scikit-posthocs computes it);
4. a pair's difference is significant at `alpha`, and matters when it is also at least `min_difference` (the
   practical-significance threshold of the metric; without one, significance alone decides).
With fewer than `MIN_SUBJECTS` complete subjects or fewer than two methods, no test is made and the result says why.

scipy loads inside the functions that use it, so importing this module costs little.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from chemlm.io import InputError

ALPHA = 0.05
MIN_SUBJECTS = 3
MAX_VARIANCE_RATIO = 3.0
# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "brier", "ece", "log_loss"})
# The guidelines' practical-significance thresholds: 0.1 for AUROC, AUPRC and MCC in their classification example,
# 0.2 for the MAE of log solubility in their regression example (config `compare.min_difference` replaces them).
DEFAULT_MIN_DIFFERENCE = {"auroc": 0.1, "auprc": 0.1, "mcc": 0.1, "macro_f1": 0.1, "r2": 0.1, "mae": 0.2, "rmse": 0.2}

TUKEY = "rm-ANOVA + Tukey HSD"
CONOVER = "Friedman + Conover (Holm)"
NO_TEST = "no test"
PAIR_COLUMNS = ["metric", "first", "second", "mean_difference", "lower", "upper", "p_adjusted", "significant", "matters",
                "test", "omnibus_p", "subjects"]


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def p_text(p: float) -> str:
    if math.isnan(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


@dataclass(frozen=True)
class Pair:
    """`first` against `second`: the mean over subjects of first − second, its simultaneous interval (Tukey; NaN under
    Conover, whose test has none) and the family-wise adjusted p value."""

    first: str
    second: str
    mean_difference: float
    lower: float
    upper: float
    p_adjusted: float
    significant: bool
    matters: bool


@dataclass(frozen=True)
class AnovaResult:
    f: float
    p: float
    df_effect: int
    df_error: int
    ms_error: float


@dataclass(frozen=True)
class MethodComparison:
    """Every pair of methods on one metric over the same subjects; `methods` best mean first."""

    metric: str
    higher_is_better: bool
    alpha: float
    min_difference: float | None
    values: pd.DataFrame  # complete subjects (rows) x methods (columns, best mean first)
    left_out: tuple[str, ...]  # subjects without a value for every method
    test: str  # TUKEY, CONOVER or NO_TEST
    reason: str  # why this test, or why none
    anova_p: float
    friedman_p: float
    levene_p: float
    variance_ratio: float
    pairs: tuple[Pair, ...]

    @property
    def methods(self) -> list[str]:
        return list(self.values.columns)

    @property
    def means(self) -> pd.Series:
        return self.values.mean()

    @property
    def subjects(self) -> int:
        return len(self.values)

    @property
    def omnibus_p(self) -> float:
        """The p value of the test that the pairs' test follows: the ANOVA's before Tukey, Friedman's before Conover."""
        return self.friedman_p if self.test == CONOVER else self.anova_p

    def pair_table(self) -> pd.DataFrame:
        rows = [
            [self.metric, pair.first, pair.second, pair.mean_difference, pair.lower, pair.upper, pair.p_adjusted,
             pair.significant, pair.matters, self.test, self.omnibus_p, self.subjects]
            for pair in self.pairs
        ]
        return pd.DataFrame(rows, columns=PAIR_COLUMNS)

    def difference_matrix(self) -> pd.DataFrame:
        """Row method − column method, for every ordered pair (0 on the diagonal)."""
        means = self.means
        return pd.DataFrame(means.to_numpy()[:, None] - means.to_numpy()[None, :], index=self.methods, columns=self.methods)

    def p_matrix(self) -> pd.DataFrame:
        """The adjusted p value of every pair, symmetric, 1 on the diagonal."""
        matrix = pd.DataFrame(1.0, index=self.methods, columns=self.methods)
        for pair in self.pairs:
            matrix.loc[pair.first, pair.second] = matrix.loc[pair.second, pair.first] = pair.p_adjusted
        return matrix

    def verdict(self, label: str | None = None, not_learned: Mapping[str, str] | None = None) -> str:
        """One sentence: which differences are real and large enough to matter, or that the methods are not
        distinguishable; without a test, why. `not_learned`: models that have not learned, with why; a difference
        against such a model is not one between models, so it is named apart."""
        label = label or self.metric
        not_learned = {name: why for name, why in (not_learned or {}).items() if name in self.methods}
        flagged = "".join(f" {name} has not learned ({why}), so its {label} is not that of a model." for name, why in not_learned.items())
        if self.test == NO_TEST:
            return f"{label}: {self.reason}; no test can be made." + flagged
        threshold = f" and at least {self.min_difference:g}" if self.min_difference is not None else ""
        where = f"over {self.subjects} split instances ({self.test}, family-wise alpha {self.alpha:g})"

        def described(pair: Pair) -> str:
            better, worse = (pair.first, pair.second) if self.is_better(pair.mean_difference) else (pair.second, pair.first)
            return f"{better} better than {worse} by {abs(pair.mean_difference):.3f} (adjusted {p_text(pair.p_adjusted)})"

        pairs = [pair for pair in self.pairs if pair.first not in not_learned and pair.second not in not_learned]
        mattering = [described(pair) for pair in pairs if pair.matters]
        small = [described(pair) for pair in pairs if pair.significant and not pair.matters]
        if not mattering and not small:
            models = "models that learned" if not_learned else "models"
            return f"{label}: no two {models} are distinguishable {where}." + flagged
        parts = []
        if mattering:
            parts.append(f"differences that are significant{threshold}: " + "; ".join(mattering))
        if small:
            parts.append(f"significant but smaller than the practical threshold {self.min_difference:g}, so not a "
                         "difference that matters: " + "; ".join(small))
        rest = len(pairs) - len(mattering) - len(small)
        tail = f"; the other {rest} pair{'s are' if rest != 1 else ' is'} not distinguishable" if rest else ""
        return f"{label} {where}: " + ". ".join(parts) + tail + "." + flagged

    def is_better(self, difference: float) -> bool:
        """Whether a positive-or-negative first − second difference favours the first."""
        return difference > 0 if self.higher_is_better else difference < 0


# ---------------------------------------------------------------------------------------------------
# The tests


def paired_values(table: pd.DataFrame, group: str, subject: str, value: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """(subjects x methods with a value for every method, the subjects left out for a missing value). One value per
    method and subject; a repeat is an error naming it."""
    for column in (group, subject, value):
        if column not in table.columns:
            raise InputError(f"the results table has no column '{column}' (columns: {', '.join(map(str, table.columns))})")
    repeated = table[table.duplicated([group, subject], keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise InputError(f"method '{first[group]}' has two values for {subject} '{first[subject]}'")
    wide = table.pivot(index=subject, columns=group, values=value).astype(float)
    wide.index = wide.index.map(str)
    complete = wide.dropna()
    return complete, tuple(str(name) for name in wide.index.difference(complete.index))


def rm_anova(values: pd.DataFrame) -> AnovaResult:
    """One-way repeated-measures ANOVA of subjects (rows) x methods (columns), subjects as blocks."""
    from scipy import stats

    y = values.to_numpy(dtype=float)
    n, k = y.shape
    grand = y.mean()
    ss_methods = n * float(((y.mean(axis=0) - grand) ** 2).sum())
    ss_subjects = k * float(((y.mean(axis=1) - grand) ** 2).sum())
    ss_error = max(float(((y - grand) ** 2).sum()) - ss_methods - ss_subjects, 0.0)
    df_effect, df_error = k - 1, (k - 1) * (n - 1)
    ms_error = ss_error / df_error
    float_noise = 1e-14 * max(float(np.abs(y).max()) ** 2, 1e-300)
    if ms_error <= float_noise:
        # the methods differ by the same amount on every subject: any difference is certain, none is certainly none
        differs = ss_methods > float_noise
        return AnovaResult(math.inf if differs else 0.0, 0.0 if differs else 1.0, df_effect, df_error, 0.0)
    f = (ss_methods / df_effect) / ms_error
    return AnovaResult(f, float(stats.f.sf(f, df_effect, df_error)), df_effect, df_error, ms_error)


@lru_cache(maxsize=256)
def tukey_critical(alpha: float, methods: int, df_error: int) -> float:
    """The studentized range's 1 − alpha quantile (scipy's is slow: cached, since simulations ask for the same one)."""
    from scipy.stats import studentized_range

    return float(studentized_range.ppf(1 - alpha, methods, df_error))


def tukey_intervals(values: pd.DataFrame, anova: AnovaResult, alpha: float) -> list[tuple[str, str, float, float, float]]:
    """(first, second, mean difference, lower, upper) of every pair, first before second in column order: Tukey's
    simultaneous intervals with the ANOVA's residual mean square, as the guidelines' `rm_tukey_hsd`."""
    n, k = values.shape
    half_width = tukey_critical(alpha, k, anova.df_error) * math.sqrt(anova.ms_error / n)
    means = values.mean()
    columns = list(values.columns)
    return [
        (first, second, float(means[first] - means[second]), float(means[first] - means[second] - half_width),
         float(means[first] - means[second] + half_width))
        for index, first in enumerate(columns) for second in columns[index + 1:]
    ]


def tukey_p_values(values: pd.DataFrame, anova: AnovaResult, differences: Sequence[float]) -> list[float]:
    """The family-wise p value of each difference: the studentized range's survival function at |d| / sqrt(MSE / n)."""
    from scipy.stats import studentized_range

    n, k = values.shape
    if anova.ms_error == 0:
        return [0.0 if difference != 0 else 1.0 for difference in differences]
    q = np.abs(np.asarray(differences, dtype=float)) / math.sqrt(anova.ms_error / n)
    return [float(p) for p in np.clip(studentized_range.sf(q, k, anova.df_error), 0.0, 1.0)]


def friedman(values: pd.DataFrame) -> float:
    """The Friedman test's p value (ranks within subjects, ties averaged and corrected for), for two methods or more:
    scipy's friedmanchisquare, which asks for three."""
    from scipy import stats

    y = values.to_numpy(dtype=float)
    n, k = y.shape
    ranks = stats.rankdata(y, axis=1)
    ties = sum(float((counts**3 - counts).sum()) for counts in (np.unique(row, return_counts=True)[1] for row in y))
    correction = 1 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        return 1.0  # every subject ties every method
    statistic = (12 / (n * k * (k + 1)) * float((ranks.sum(axis=0) ** 2).sum()) - 3 * n * (k + 1)) / correction
    return float(stats.chi2.sf(statistic, k - 1))


def conover_p_values(values: pd.DataFrame) -> pd.DataFrame:
    """Conover's post-hoc test after Friedman, Holm-adjusted, methods x methods: scikit-posthocs'
    posthoc_conover_friedman(p_adjust="holm") computed on arrays (it is fast enough to simulate with)."""
    from scipy import stats

    y = values.to_numpy(dtype=float)
    n, k = y.shape
    ranks = stats.rankdata(y, axis=1)
    rank_sums = ranks.sum(axis=0)
    s2 = (float((ranks**2).sum()) - k * n * (k + 1) ** 2 / 4) / (k - 1)
    upper = np.triu_indices(k, 1)
    differences = np.abs(rank_sums[upper[0]] - rank_sums[upper[1]])
    df = n * k - k - n + 1
    if s2 <= 0:  # every subject ties every method
        p = np.ones(len(differences))
    else:
        t2 = float(((rank_sums - n * (k + 1) / 2) ** 2).sum()) / s2
        scale = s2 * 2 * n * (k - 1) / df * max(1 - t2 / (n * (k - 1)), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(differences == 0, 0.0, differences / np.sqrt(scale))
        p = 2 * stats.t.sf(t, df)
    matrix = np.ones((k, k))
    matrix[upper] = holm(p)
    matrix.T[upper] = matrix[upper]
    return pd.DataFrame(matrix, index=values.columns, columns=values.columns)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of a family of p values."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p_values[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


def assumption_checks(values: pd.DataFrame) -> tuple[float, float]:
    """(Levene's p value across methods, largest over smallest variance); NaN p where every method is constant."""
    from scipy import stats

    variances = values.var(ddof=1).to_numpy()
    largest, smallest = float(variances.max()), float(variances.min())
    ratio = 1.0 if largest == 0 else (math.inf if smallest == 0 else largest / smallest)
    if largest == 0:
        return math.nan, ratio
    return float(stats.levene(*(values[column].to_numpy() for column in values.columns)).pvalue), ratio


def compare_methods(
    table: pd.DataFrame, metric: str, *, group: str = "method", subject: str = "subject", value: str = "value",
    min_difference: float | None = None, alpha: float = ALPHA, lower_is_better: bool | None = None,
) -> MethodComparison:
    """Every pair of the table's methods on `metric` (the rows of `table` are that metric's values)."""
    better_higher = higher_is_better(metric) if lower_is_better is None else not lower_is_better
    values, left_out = paired_values(table, group, subject, value)
    order = values.mean().sort_values(ascending=not better_higher, kind="stable").index
    values = values[list(order)]
    values.columns = [str(column) for column in values.columns]
    n, k = values.shape

    def result(test: str, reason: str, anova_p=math.nan, friedman_p=math.nan, levene_p=math.nan, ratio=math.nan, pairs=()):
        return MethodComparison(metric, better_higher, alpha, min_difference, values, left_out, test, reason,
                                anova_p, friedman_p, levene_p, ratio, tuple(pairs))

    if k < 2:
        return result(NO_TEST, f"{k} model{'s' if k != 1 else ''} with results")
    if n < MIN_SUBJECTS:
        means = values.mean()
        untested = [Pair(first, second, float(means[first] - means[second]), math.nan, math.nan, math.nan, False, False)
                    for index, first in enumerate(values.columns) for second in values.columns[index + 1:]]
        return result(NO_TEST, f"{n} split instance{'s' if n != 1 else ''} with a result for every model (a test needs "
                               f"at least {MIN_SUBJECTS})", pairs=untested)
    anova = rm_anova(values)
    levene_p, ratio = assumption_checks(values)
    friedman_p = friedman(values)
    parametric = not (levene_p < alpha) and ratio <= MAX_VARIANCE_RATIO

    def matters(difference: float, significant: bool) -> bool:
        return significant and (min_difference is None or abs(difference) >= min_difference)

    if parametric:
        intervals = tukey_intervals(values, anova, alpha)
        p_values = tukey_p_values(values, anova, [difference for _, _, difference, _, _ in intervals])
        pairs = []
        for (first, second, difference, lower, upper), p in zip(intervals, p_values):
            significant = lower > 0 or upper < 0
            pairs.append(Pair(first, second, difference, lower, upper, p, significant, matters(difference, significant)))
        reason = f"Levene p {levene_p:.2g}, variance ratio {ratio:.2g} (at most {MAX_VARIANCE_RATIO:g})"
        return result(TUKEY, reason, anova.p, friedman_p, levene_p, ratio, pairs)
    conover = conover_p_values(values)
    means = values.mean()
    pairs = []
    for index, first in enumerate(values.columns):
        for second in values.columns[index + 1:]:
            difference, p = float(means[first] - means[second]), float(conover.loc[first, second])
            # Conover's test follows a significant Friedman test; alone it finds "differences" in a few instances ranked
            # alike (its statistic grows without bound as the ranks agree)
            significant = p < alpha and friedman_p < alpha
            pairs.append(Pair(first, second, difference, math.nan, math.nan, p, significant, matters(difference, significant)))
    failed = "Levene's test" if levene_p < alpha else f"the variance ratio {ratio:.2g} (above {MAX_VARIANCE_RATIO:g})"
    return result(CONOVER, f"the ANOVA's checks fail: {failed}", anova.p, friedman_p, levene_p, ratio, pairs)


def compare_metrics(
    table: pd.DataFrame, metrics: Sequence[str], *, group: str, subject: str, metric_column: str = "metric",
    value: str = "value", min_difference: Mapping[str, float] | None = None, alpha: float = ALPHA,
    lower_is_better: Sequence[str] = (),
) -> list[MethodComparison]:
    """`compare_methods` for each metric of a long table with a metric column."""
    thresholds = {**DEFAULT_MIN_DIFFERENCE, **(min_difference or {})}
    comparisons = []
    for metric in metrics:
        rows = table[table[metric_column] == metric]
        if rows.empty:
            raise InputError(f"no values of metric '{metric}' (metrics: {', '.join(map(str, table[metric_column].unique()))})")
        comparisons.append(compare_methods(
            rows, metric, group=group, subject=subject, value=value, alpha=alpha,
            min_difference=thresholds.get(metric, thresholds.get(metric.split("@")[0])),
            lower_is_better=True if metric in lower_is_better else None,
        ))
    return comparisons


# ---------------------------------------------------------------------------------------------------
# Across tasks: ranks


@dataclass(frozen=True)
class RankSummary:
    """Models ranked within each task (1 = best; ties averaged), their mean rank, and Friedman's test over the tasks
    with Conover's Holm-adjusted post-hoc p values (None with fewer than MIN_SUBJECTS tasks)."""

    ranks: pd.DataFrame  # tasks x models
    friedman_p: float
    p_values: pd.DataFrame | None

    @property
    def mean_ranks(self) -> pd.Series:
        return self.ranks.mean().sort_values()


def rank_models(means: pd.DataFrame, better_higher: Mapping[str, bool]) -> RankSummary:
    """`means`: one row per task (its index names it), one column per model, the task's headline metric; tasks where
    a model has no result are left out. `better_higher[task]` gives the direction of the task's metric."""
    complete = means.dropna()
    ranks = pd.DataFrame(
        [complete.loc[task].rank(ascending=not better_higher[task]).to_numpy() for task in complete.index],
        index=complete.index, columns=complete.columns,
    )
    if len(complete) < MIN_SUBJECTS or complete.shape[1] < 2:
        return RankSummary(ranks, math.nan, None)
    # Friedman on the ranks, oriented so that larger is better for every task
    oriented = -ranks
    return RankSummary(ranks, friedman(oriented), conover_p_values(oriented))
