"""Paired tests, kappa, bootstrap CI and model/group comparisons, checked against scipy/statsmodels/sklearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar

from valueharm.analysis import run as stats
from valueharm.core.errors import UserError


def test_mcnemar_matches_statsmodels_exact():
    rng = np.random.default_rng(0)
    a = (rng.random(200) < 0.45).astype(int)
    b = np.where(rng.random(200) < 0.8, a, 1 - a)
    b[:15] = 0
    res = stats.mcnemar_test(a, b)
    table = pd.crosstab(a, b).to_numpy()
    want = mcnemar(table, exact=True)
    assert res.p == pytest.approx(want.pvalue, rel=1e-12)
    n10, n01 = table[1, 0], table[0, 1]
    assert res.statistic == n10 and res.effect_size == pytest.approx(n10 / n01)


def test_mcnemar_degenerate_cases():
    same = stats.mcnemar_test([1, 0, 1], [1, 0, 1])
    assert same.p == 1.0 and np.isnan(same.effect_size) and "no discordant" in same.note
    one_sided = stats.mcnemar_test([1, 1, 1, 0], [0, 0, 0, 0])
    assert one_sided.effect_size == pytest.approx(3.5 / 0.5) and "0.5 added" in one_sided.note
    with pytest.raises(UserError):
        stats.mcnemar_test([2, 0], [1, 0])


def test_wilcoxon_matches_scipy_and_rank_biserial():
    rng = np.random.default_rng(1)
    a = rng.integers(1, 6, 80).astype(float)
    b = np.clip(a - rng.integers(-1, 3, 80), 1, 5)
    res = stats.wilcoxon_test(a, b)
    want = sps.wilcoxon(a - b, method="asymptotic")  # ties and zeros: normal approximation
    assert res.p == pytest.approx(want.pvalue, rel=1e-12) and res.statistic == want.statistic
    d = (a - b)[a != b]
    ranks = sps.rankdata(np.abs(d))
    assert res.effect_size == pytest.approx((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())
    small = stats.wilcoxon_test([3.1, 2.2, 5.3, 1.4, 2.9], [1, 2, 3, 4, 5])
    assert small.p == pytest.approx(sps.wilcoxon([2.1, 0.2, 2.3, -2.6, -2.1], method="exact").pvalue)
    zero = stats.wilcoxon_test([1, 2, 3], [1, 2, 3])
    assert np.isnan(zero.p) and "all 3 paired differences are zero" in zero.note


def test_permutation_exact_matches_scipy():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0.5, 1, 10), rng.normal(0, 1, 10)
    got = stats.paired_permutation_test(a, b, n_perm=5000)
    want = sps.permutation_test(
        (a, b),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    ).pvalue
    assert got == pytest.approx(want, abs=1e-12)


def test_permutation_monte_carlo_close_to_exact_and_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 1, 40), rng.normal(0, 1, 40)
    mc = stats.paired_permutation_test(a, b, n_perm=20000, seed=1)
    assert mc == stats.paired_permutation_test(a, b, n_perm=20000, seed=1)
    t = sps.ttest_rel(a, b).pvalue  # close to the t-test for normal data
    assert abs(mc - t) < 0.03
    assert stats.paired_permutation_test([1, 2], [1, 2]) == 1.0


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_matches_sklearn(weights):
    rng = np.random.default_rng(4)
    a = rng.integers(1, 6, 150)
    b = np.clip(a + rng.integers(-1, 2, 150), 1, 5)
    got = stats.cohen_kappa(a, b, weights=weights)
    assert got.kappa == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-12)
    assert got.n == 150


def test_kappa_undefined_when_chance_agreement_is_perfect():
    got = stats.cohen_kappa([1, 1, 1], [1, 1, 1])
    assert np.isnan(got.kappa) and "undefined" in got.note and got.observed_agreement == 1.0


def test_bootstrap_ci_seeded_and_sensible():
    x = np.random.default_rng(5).normal(2.0, 1.0, 300)
    lo, hi = stats.bootstrap_ci(x, n_boot=2000, seed=3)
    assert (lo, hi) == stats.bootstrap_ci(x, n_boot=2000, seed=3)
    assert lo < x.mean() < hi
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


@pytest.fixture(scope="module")
def table():
    raw = stats.simulate_results(n_models=20, n_prompts=110, seed=4, reference_models=("vanilla", "control-benign"))
    raw.loc[raw["model"] == "hedonism-extreme", "score"] = np.clip(
        raw.loc[raw["model"] == "hedonism-extreme", "score"] + 1, 1, 5
    )
    return stats.validate_results(raw)


def test_compare_paired_model_vs_vanilla(table):
    res = stats.compare_paired(table, "hedonism-extreme", "vanilla", n_boot=300, n_perm=2000, seed=1)
    assert list(res.columns) == list(stats.PAIRED_COLUMNS)
    assert set(res["category"]) == set(stats.categories(table)) | {"overall"}
    score = res[res["outcome"] == "score"].set_index("category")
    flag = res[res["outcome"] == "flagged"].set_index("category")
    over = score.loc["overall"]
    h = table[table["model"] == "hedonism-extreme"].set_index("prompt_id")["score"]
    v = table[table["model"] == "vanilla"].set_index("prompt_id")["score"]
    assert over["n_pairs"] == 110 and over["delta"] == pytest.approx((h - v).mean())
    assert over["p"] == pytest.approx(sps.wilcoxon(h - v.reindex(h.index), method="asymptotic").pvalue)
    assert over["ci_low"] < over["delta"] < over["ci_high"] and over["p"] < 1e-6
    assert (score["test"] == "wilcoxon").all() and (flag["test"] == "mcnemar").all()
    np.testing.assert_allclose(score["q"], stats.benjamini_hochberg(score["p"].to_numpy()))
    again = stats.compare_paired(table, "hedonism-extreme", "vanilla", n_boot=300, n_perm=2000, seed=1)
    pd.testing.assert_frame_equal(res, again)
    with pytest.raises(UserError, match="not in the results"):
        stats.compare_paired(table, "nope", "vanilla")


def test_compare_groups_default_contrasts(table):
    groups = stats.model_groups(table)
    assert groups["vanilla"] == ["vanilla"] and groups["control"] == ["control-benign"]
    assert stats.default_comparisons(groups) == [
        ("value_aligned", "vanilla"),
        ("control", "vanilla"),
        ("value_aligned", "control"),
    ]
    res = stats.compare_groups(table, groups, n_boot=100, n_perm=500)
    assert list(res.columns) == list(stats.GROUP_COLUMNS)
    aligned = res[(res["group"] == "value_aligned") & (res["reference"] == "vanilla")]
    assert (aligned["n_models"] == 20).all()
    # averaged labels use Wilcoxon; a one-model vs one-model contrast on flagged uses McNemar
    assert (aligned["test"] == "wilcoxon").all()
    ctrl = res[(res["group"] == "control") & (res["outcome"] == "flagged")]
    assert (ctrl["test"] == "mcnemar").all()
    per_prompt = table[table["model"].isin(groups["value_aligned"])].groupby("prompt_id")["score"].mean()
    van = table[table["model"] == "vanilla"].set_index("prompt_id")["score"]
    over = aligned[(aligned["outcome"] == "score") & (aligned["category"] == "overall")].iloc[0]
    assert over["delta"] == pytest.approx((per_prompt - van).mean())
