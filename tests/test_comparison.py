"""chemlm.comparison against the libraries the guidelines' code uses, by simulation, and `chemlm compare`."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs
from scipy import stats
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.libqsturng import psturng, qsturng

from chemlm import cli
from chemlm.comparison import (
    CONOVER,
    NO_TEST,
    TUKEY,
    compare_methods,
    friedman,
    conover_p_values,
    rank_models,
    rm_anova,
    tukey_intervals,
)


def study(rng: np.random.Generator, shifts, subjects: int = 25, subject_sd: float = 0.05, noise_sd: float = 0.02,
          noise_sds=None) -> pd.DataFrame:
    """A long table of `len(shifts)` methods over `subjects` split instances: a shared instance effect (what the
    split makes hard or easy), a method's shift and its own noise."""
    shared = rng.normal(0, subject_sd, (subjects, 1))
    noise = rng.normal(0, 1, (subjects, len(shifts))) * (np.asarray(noise_sds) if noise_sds is not None else noise_sd)
    values = 0.8 + shared + np.asarray(shifts) + noise
    return pd.DataFrame(
        [(f"m{method}", f"r{subject // 5}f{subject % 5}", values[subject, method])
         for subject in range(subjects) for method in range(len(shifts))],
        columns=["method", "subject", "value"],
    )


def test_rm_anova_matches_statsmodels():
    table = study(np.random.default_rng(0), [0, 0.01, 0.03, -0.02])
    expected = AnovaRM(table, depvar="value", subject="subject", within=["method"]).fit().anova_table.iloc[0]
    comparison = compare_methods(table, "auroc")
    result = rm_anova(comparison.values)
    assert result.f == pytest.approx(expected["F Value"], rel=1e-10)
    assert result.p == pytest.approx(expected["Pr > F"], rel=1e-8)
    assert (result.df_effect, result.df_error) == (expected["Num DF"], expected["Den DF"])
    assert comparison.test == TUKEY and comparison.anova_p == pytest.approx(expected["Pr > F"], rel=1e-8)


def test_tukey_matches_the_guidelines_rm_tukey_hsd():
    """The guidelines' code: se = sqrt(2 MSE / n), interval mean difference ± q / sqrt(2) · se, p from psturng."""
    table = study(np.random.default_rng(1), [0, 0.006, 0.012, 0.03])
    comparison = compare_methods(table, "auroc")
    anova = rm_anova(comparison.values)
    n, k = comparison.values.shape
    se = math.sqrt(2 * anova.ms_error / n)
    q = qsturng(0.95, k, anova.df_error)
    means = comparison.means
    assert len(comparison.pairs) == k * (k - 1) // 2
    for pair in comparison.pairs:
        difference = means[pair.first] - means[pair.second]
        assert pair.mean_difference == pytest.approx(difference, abs=1e-12)
        assert pair.lower == pytest.approx(difference - q / math.sqrt(2) * se, abs=2e-5)  # qsturng is an approximation
        assert pair.upper == pytest.approx(difference + q / math.sqrt(2) * se, abs=2e-5)
        expected_p = float(np.atleast_1d(psturng(abs(difference) / se * math.sqrt(2), k, anova.df_error))[0])
        if 0.001 < expected_p < 0.9:  # psturng's table stops at 0.001 and 0.9
            # psturng interpolates a table: close where decisions are made, within 0.02 higher up
            assert pair.p_adjusted == pytest.approx(expected_p, abs=0.003 if expected_p < 0.1 else 0.02)
        else:
            assert pair.p_adjusted < 0.0015 or pair.p_adjusted > 0.89
        assert pair.significant == (pair.p_adjusted < 0.05)
    assert comparison.methods == list(means.sort_values(ascending=False).index)  # best first


def test_friedman_matches_scipy_with_ties():
    rng = np.random.default_rng(2)
    values = pd.DataFrame(np.round(rng.normal(0.8, 0.03, (12, 4)), 2))  # rounding makes ties
    assert friedman(values) == pytest.approx(stats.friedmanchisquare(*values.T.to_numpy()).pvalue, rel=1e-10)


def test_unequal_variances_switch_to_friedman_and_conover():
    table = study(np.random.default_rng(3), [0, 0.0, 0.05], subject_sd=0.0, noise_sds=[0.005, 0.005, 0.04])
    comparison = compare_methods(table, "auroc", min_difference=0.1)
    assert comparison.test == CONOVER and comparison.variance_ratio > 3
    expected = scikit_posthocs.posthoc_conover_friedman(comparison.values.reset_index(drop=True), p_adjust="holm")
    for pair in comparison.pairs:
        assert pair.p_adjusted == pytest.approx(expected.loc[pair.first, pair.second])
        assert math.isnan(pair.lower) and math.isnan(pair.upper)
    assert comparison.omnibus_p == pytest.approx(stats.friedmanchisquare(*comparison.values.T.to_numpy()).pvalue)
    assert "Friedman + Conover" in comparison.verdict()


@pytest.mark.parametrize("decimals", [3, 1])
def test_conover_matches_scikit_posthocs(decimals):
    values = pd.DataFrame(np.round(np.random.default_rng(9).normal(0.8, 0.05, (10, 5)), decimals), columns=list("abcde"))
    expected = scikit_posthocs.posthoc_conover_friedman(values, p_adjust="holm")
    np.testing.assert_allclose(conover_p_values(values).to_numpy(), expected.to_numpy(), rtol=1e-10, atol=1e-14)


def test_fewer_than_three_instances_make_no_test():
    table = study(np.random.default_rng(4), [0, 0.1], subjects=2)
    comparison = compare_methods(table, "auroc")
    assert comparison.test == NO_TEST and len(comparison.pairs) == 1
    pair = comparison.pairs[0]
    assert math.isnan(pair.p_adjusted) and not pair.significant and pair.mean_difference == pytest.approx(0.1, abs=0.1)
    assert comparison.verdict("AUROC") == ("AUROC: 2 split instances with a result for every model (a test needs at least 3); "
                                           "no test can be made.")


def test_an_instance_missing_a_model_is_left_out():
    table = study(np.random.default_rng(5), [0, 0.0, 0.0], subjects=5)
    table.loc[(table["method"] == "m1") & (table["subject"] == "r0f2"), "value"] = np.nan
    comparison = compare_methods(table, "auroc")
    assert comparison.left_out == ("r0f2",) and comparison.subjects == 4


def test_verdict_names_a_better_model_only_where_the_difference_matters():
    rng = np.random.default_rng(6)
    clear = compare_methods(study(rng, [0, 0.15, 0.0]), "auroc", min_difference=0.1)
    text = clear.verdict("AUROC")
    assert "significant and at least 0.1: m1 better than m" in text
    assert "m1 better than m0 by 0.1" in text and "m1 better than m2 by 0.1" in text
    assert "the other 1 pair is not distinguishable" in text
    small = compare_methods(study(rng, [0, 0.03, 0.0]), "auroc", min_difference=0.1)
    assert all(not pair.matters for pair in small.pairs) and any(pair.significant for pair in small.pairs)
    assert "smaller than the practical threshold 0.1, so not a difference that matters" in small.verdict()
    same = compare_methods(study(np.random.default_rng(7), [0, 0, 0]), "auroc", min_difference=0.1)
    if not any(pair.significant for pair in same.pairs):
        assert "no two models are distinguishable over 25 split instances" in same.verdict()
    rmse = compare_methods(study(rng, [0, 0.15, 0.0]), "rmse", min_difference=0.1)
    assert rmse.methods[0] in ("m0", "m2") and "better than m1" in rmse.verdict()  # smaller RMSE is better


def null_studies(rounds: int, methods: int, shift: float = 0.0):
    rng = np.random.default_rng(20250601)
    for _ in range(rounds):
        yield study(rng, [shift] + [0.0] * (methods - 1))


def test_tukey_keeps_the_family_wise_error_rate():
    """With no true difference, 5% ± 2% of 1,000 simulated 5x5 studies of 4 models find any significant pair."""
    found = 0
    for table in null_studies(1000, 4):
        values = table.pivot(index="subject", columns="method", values="value")
        intervals = tukey_intervals(values, rm_anova(values), 0.05)
        found += any(lower > 0 or upper < 0 for _, _, _, lower, upper in intervals)
    assert 0.03 <= found / 1000 <= 0.07


def test_conover_with_holm_keeps_the_family_wise_error_rate():
    found = 0
    for table in null_studies(1000, 4):
        values = table.pivot(index="subject", columns="method", values="value")
        p_values = conover_p_values(values).to_numpy()
        found += bool((p_values[np.triu_indices(4, 1)] < 0.05).any())
    assert found / 1000 <= 0.07


def test_ranks_across_tasks():
    means = pd.DataFrame({"a": [0.9, 0.8, 1.0, 0.7], "b": [0.8, 0.7, 2.0, 0.6], "c": [0.7, 0.9, 3.0, 0.5]},
                         index=["hiv", "tox21", "esol", "bbbp"])
    summary = rank_models(means, {"hiv": True, "tox21": True, "esol": False, "bbbp": True})
    assert summary.ranks.loc["esol"].tolist() == [1.0, 2.0, 3.0]  # RMSE: smaller is better
    assert summary.mean_ranks.to_dict() == {"a": 1.25, "b": 2.25, "c": 2.5}
    assert 0 < summary.friedman_p < 1 and summary.p_values.shape == (3, 3)
    assert rank_models(means.iloc[:2], {"hiv": True, "tox21": True}).p_values is None


def test_chemlm_compare_reads_a_long_table(tmp_path, capsys):
    rng = np.random.default_rng(8)
    table = study(rng, [0, 0.12, 0.0]).rename(columns={"subject": "cv_cycle", "value": "r2"})
    table["mae"] = 1 - table["r2"]
    table.to_csv(tmp_path / "results.csv", index=False)
    out = tmp_path / "out"
    code = cli.main(["compare", str(tmp_path / "results.csv"), "--group-column", "method", "--subject-column", "cv_cycle",
                     "--metric", "r2", "--metric", "mae", "--output", str(out), "--min-difference", "mae=0.05"])
    assert code == 0
    written = pd.read_csv(out / "comparison.csv")
    assert set(written["metric"]) == {"r2", "mae"} and len(written) == 6
    assert set(written.columns) >= {"first", "second", "mean_difference", "lower", "upper", "p_adjusted", "test"}
    assert (out / "r2.png").stat().st_size > 10_000 and (out / "mae.png").exists()
    mae = written[written["metric"] == "mae"]
    assert mae.iloc[0]["first"] == "m1"  # the best model first: smallest MAE
    assert "m1 better than m0" in capsys.readouterr().err
    code = cli.main(["compare", str(tmp_path / "results.csv"), "--group-column", "model", "--subject-column", "cv_cycle",
                     "--metric", "r2", "--output", str(out)])
    assert code == 2 and f"{tmp_path / 'results.csv'}: no column 'model'" in capsys.readouterr().err
