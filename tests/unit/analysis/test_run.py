"""Correlations, BH, bootstrap and the results-table checks of valueharm.analysis.run (known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from valueharm.analysis import run as stats
from valueharm.analysis.correlation import correlation_matrix
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

# Benjamini & Hochberg (1995), JRSS B 57(1), p. 298: the 15 p-values of their worked example;
# at q* = 0.05 the procedure rejects the four smallest.
BH_1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.0000,
]


def test_bh_textbook_example():
    q = stats.benjamini_hochberg(BH_1995)
    assert (q <= 0.05).sum() == 4
    assert np.all(q[:4] <= 0.05) and np.all(q[4:] > 0.05)
    np.testing.assert_allclose(q, multipletests(BH_1995, method="fdr_bh")[1], rtol=1e-12)
    assert q[0] == pytest.approx(0.0015)  # 0.0001 * 15 / 1


def test_bh_ignores_nan_and_keeps_order():
    p = np.array([0.04, np.nan, 0.01, 0.03, np.nan])
    q = stats.benjamini_hochberg(p)
    assert np.isnan(q[1]) and np.isnan(q[4])
    np.testing.assert_allclose(q[[0, 2, 3]], multipletests([0.04, 0.01, 0.03], method="fdr_bh")[1])
    assert np.isnan(stats.benjamini_hochberg([np.nan])).all()


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(1)
    x = rng.integers(1, 7, 25).astype(float)  # ties, like value scores
    y = 0.4 * x + rng.normal(0, 1, 25)
    return x, np.round(y, 1)


@pytest.mark.parametrize(
    "method,ref", [("pearson", sps.pearsonr), ("spearman", sps.spearmanr), ("kendall", sps.kendalltau)]
)
def test_correlate_matches_scipy(xy, method, ref):
    x, y = xy
    got = stats.correlate(x, y, method)
    want = ref(x, y)
    assert got.r == pytest.approx(want[0], abs=1e-12)
    assert got.p == pytest.approx(want[1], rel=1e-9)
    assert got.n == 25 and got.note == ""


def test_partial_correlation_matches_ols_t_test():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(40, 4))
    x = Z @ [0.5, -0.3, 0.2, 0.0] + rng.normal(size=40)
    y = 0.4 * x + Z @ [0.1, 0.6, 0.0, -0.4] + rng.normal(size=40)
    fit = sm.OLS(y, sm.add_constant(np.column_stack([x, Z]))).fit()
    t, df = fit.tvalues[1], fit.df_resid
    got = stats.partial_correlation(x, y, Z)
    assert got.r == pytest.approx(t / np.sqrt(t**2 + df), abs=1e-12)
    assert got.p == pytest.approx(fit.pvalues[1], rel=1e-9)
    # partial Spearman = partial Pearson on ranks
    ranked = stats.partial_correlation(sps.rankdata(x), sps.rankdata(y), np.apply_along_axis(sps.rankdata, 0, Z))
    assert stats.partial_correlation(x, y, Z, "spearman").r == pytest.approx(ranked.r, abs=1e-12)


def test_undefined_correlations_are_noted_not_zero():
    x = np.array([1.0, 2, 3, 4, 5])
    flat = np.full(5, 3.0)
    for res in (stats.correlate(flat, x), stats.correlate(x, flat)):
        assert np.isnan(res.r) and np.isnan(res.p) and "constant" in res.note
    short = stats.correlate([1, 2], [3, 4])
    assert np.isnan(short.r) and "at least 3" in short.note
    # a value that is a linear combination of the others has no partial correlation
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    r, p, notes = correlation_matrix(X, rng.normal(size=(30, 2)), "partial_pearson", list("abcd"))
    assert np.isnan(r[[0, 1, 3]]).all() and all("collinear" in n for n in notes[[0, 1, 3]].ravel())
    assert np.isfinite(r[2]).all() and (notes[2] == "").all()  # c is not part of the dependency
    r, _, notes = correlation_matrix(rng.normal(size=(8, 10)), rng.normal(size=(8, 1)), "partial_pearson")
    assert np.isnan(r).all() and "too few" in notes[0, 0]


@pytest.mark.parametrize("n_models", [16, 40])
@pytest.mark.parametrize("method", stats.METHODS)
def test_vectorised_bootstrap_equals_direct_resamples(n_models, method):
    """Each bootstrap replicate equals the correlation computed directly on the resampled rows."""
    rng = np.random.default_rng(4)
    X = stats.simulate_profiles(n_models, seed=0).to_numpy()
    Y = rng.normal(size=(n_models, 3))
    Y[:, 0] += X[:, 3]
    Y[:, 2] = np.round(Y[:, 2])  # ties in the outcome too
    idx = rng.integers(0, n_models, size=(20 if method == "kendall" else 60, n_models))
    boot = stats.bootstrap_correlations(X, Y, method, idx)
    direct = np.array([correlation_matrix(X[i], Y[i], method)[0] for i in idx])
    if method.startswith("partial"):  # needs V + 2 distinct models, see the code
        direct[np.array([len(set(i)) for i in idx]) < len(VALUES) + 2] = np.nan
    assert np.array_equal(np.isnan(boot), np.isnan(direct))
    np.testing.assert_allclose(boot[np.isfinite(boot)], direct[np.isfinite(direct)], atol=1e-9)


@stats.blas_single_thread
def test_bootstrap_ci_covers_true_correlation():
    """Percentile CIs over models cover the true r at about the nominal rate (seeded)."""
    rng = np.random.default_rng(5)
    rho, n, hits, reps = 0.5, 60, 0, 100
    cov = [[1, rho], [rho, 1]]
    for _ in range(reps):
        xy = rng.multivariate_normal([0, 0], cov, size=n)
        idx = rng.integers(0, n, size=(300, n))
        lo, hi, _ = stats.percentile_ci(stats.bootstrap_correlations(xy[:, :1], xy[:, 1:], "pearson", idx))
        hits += lo[0, 0] <= rho <= hi[0, 0]
    assert 0.87 <= hits / reps <= 0.99


def _fdp(q: np.ndarray, truth: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    rejected = q < alpha
    false = (rejected & ~truth).sum()
    return (false / rejected.sum() if rejected.any() else 0.0), (rejected & truth).sum() / max(truth.sum(), 1)


@pytest.mark.parametrize("method", ["pearson", "spearman", "partial_pearson"])
@stats.blas_single_thread  # many tiny products: one thread is faster
def test_fdr_near_nominal_under_null_and_with_signal(method):
    rng = np.random.default_rng(6)
    X = stats.simulate_profiles(60, seed=1).to_numpy()
    Xz = (X - X.mean(0)) / X.std(0)
    null_fdp, mixed_fdp, power = [], [], []
    for _ in range(120):
        Y = rng.normal(size=(60, 12))
        _, p, _ = correlation_matrix(X, Y, method)
        null_fdp.append(_fdp(stats.benjamini_hochberg(p.ravel()), np.zeros(p.size, bool))[0])
        truth = np.zeros((10, 12), bool)
        for v, c in ((0, 0), (3, 5), (4, 7), (9, 11)):
            Y[:, c] += 0.9 * Xz[:, v]
            truth[v, c] = True
        _, p, _ = correlation_matrix(X, Y, method)
        if method != "partial_pearson":  # marginal r of the other values is not null here
            continue
        fdp, pw = _fdp(stats.benjamini_hochberg(p.ravel()), truth.ravel())
        mixed_fdp.append(fdp)
        power.append(pw)
    # complete null: FDR = P(any rejection) <= alpha, up to simulation error (sd ~ 0.015)
    assert np.mean(null_fdp) <= 0.05 + 0.035
    if mixed_fdp:
        assert np.mean(mixed_fdp) <= 0.05 + 0.03
        assert np.mean(power) > 0.9


# ---------------------------------------------------------------------------------------------
# value_correlations on simulated tables

PLANTED = {("hedonism", "adult_content"): 0.7, ("power", "malware"): -0.7, ("universalism", "fraud_deception"): -0.6}


@pytest.fixture(scope="module")
def planted_table():
    raw = stats.simulate_results(n_models=60, n_prompts=220, effects=PLANTED, seed=3)
    return stats.validate_results(raw)


@pytest.fixture(scope="module")
def planted_corr(planted_table):
    return stats.value_correlations(planted_table, n_boot=200, seed=1)


def test_correlation_table_shape_and_columns(planted_corr, planted_table):
    assert list(planted_corr.columns) == list(stats.CORRELATION_COLUMNS)
    assert tuple(planted_corr.columns[:9]) == ("value", "category", "method", "r", "p", "q", "ci_low", "ci_high", "n")
    cats = stats.categories(planted_table) + ["overall"]
    assert len(planted_corr) == len(VALUES) * len(cats) * len(stats.METHODS) * 2
    assert set(planted_corr["category"]) == set(cats)
    assert (planted_corr["n"] == 60).all()  # vanilla has no profile
    for (outcome, method), part in planted_corr.groupby(["outcome", "method"]):
        np.testing.assert_allclose(part["q"], stats.benjamini_hochberg(part["p"].to_numpy()))
    defined = planted_corr[planted_corr["r"].notna()]
    assert ((defined["ci_low"] <= defined["r"] + 1e-9) & (defined["r"] <= defined["ci_high"] + 1e-9)).mean() > 0.97


@pytest.mark.parametrize("method", ["spearman", "partial_pearson", "partial_spearman", "kendall"])
def test_planted_cells_are_found(planted_corr, method):
    part = planted_corr[(planted_corr["method"] == method) & (planted_corr["outcome"] == "score")]
    for (value, category), beta in PLANTED.items():
        row = part[(part["value"] == value) & (part["category"] == category)].iloc[0]
        assert row["q"] < 0.05 and np.sign(row["r"]) == np.sign(beta), (value, category, row.to_dict())
    if method.startswith("partial"):
        hits = part[(part["q"] < 0.05) & (part["category"] != "overall")]
        false = set(zip(hits["value"], hits["category"])) - set(PLANTED)
        assert len(false) <= 2, false  # BH lets ~5% of discoveries be false


def test_bootstrap_is_seeded(planted_table):
    small = planted_table[planted_table["category"].isin(["malware", "adult_content"])]
    a = stats.value_correlations(small, methods="pearson,kendall", n_boot=50, seed=7)
    b = stats.value_correlations(small, methods="pearson,kendall", n_boot=50, seed=7)
    c = stats.value_correlations(small, methods="pearson,kendall", n_boot=50, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"], c["ci_low"], equal_nan=True)


def test_constant_value_column_gives_noted_rows(planted_table):
    table = planted_table.copy()
    has = table["tradition"].notna()
    table.loc[has, "tradition"] = 3.0
    corr = stats.value_correlations(table, methods="pearson,partial_pearson", n_boot=20)
    trad = corr[corr["value"] == "tradition"]
    assert trad["r"].isna().all() and trad["p"].isna().all() and trad["q"].isna().all()
    assert trad["note"].str.contains("tradition is constant").all()
    others = corr[corr["value"] != "tradition"]
    assert others["r"].notna().all()  # partials still defined: constant control is dropped


def test_constant_outcome_in_one_category_is_noted(planted_table):
    table = planted_table.copy()
    table.loc[table["category"] == "malware", "score"] = 1.0
    corr = stats.value_correlations(table, methods="spearman", outcomes=("score",), n_boot=0)
    mal = corr[corr["category"] == "malware"]
    assert mal["r"].isna().all() and mal["note"].str.contains("score in malware is constant").all()
    assert corr[corr["category"] != "malware"]["r"].notna().all()
    assert corr["ci_low"].isna().all()  # --bootstrap 0: no CIs


def test_few_models_rows_undefined():
    raw = stats.simulate_results(n_models=2, n_prompts=22, seed=1)
    corr = stats.value_correlations(stats.validate_results(raw), methods="pearson", n_boot=10)
    assert corr["r"].isna().all() and corr["note"].str.contains("at least 3").all()


# ---------------------------------------------------------------------------------------------
# Results table validation


def _tiny() -> pd.DataFrame:
    return stats.simulate_results(n_models=4, n_prompts=22, seed=2)


def _check(frame: pd.DataFrame, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        stats.validate_results(frame, source="t.csv")
    msg = str(info.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def test_missing_column_is_named():
    _check(_tiny().drop(columns=["flagged", "power"]), "missing columns", "'flagged'", "'power'")


def test_non_numeric_score_names_row():
    frame = _tiny().astype({"score": object})
    frame.loc[5, "score"] = "high"
    _check(frame, "row 6", "score 'high' is not a number", "prompt_id=")


def test_score_range_and_flag_values():
    frame = _tiny()
    frame.loc[3, "score"] = 7
    _check(frame, "row 4", "outside 1..5")
    frame = _tiny().astype({"flagged": object})
    frame.loc[2, "flagged"] = "maybe"
    _check(frame, "row 3", "not 0 or 1")


def test_category_with_one_model():
    frame = _tiny()
    extra = frame.iloc[[0]].assign(prompt_id="extra-1", category="jailbreak")
    _check(
        pd.concat([frame, extra], ignore_index=True), "category 'jailbreak'", "only one model", "achievement-extreme"
    )


def test_inconsistent_profiles_and_duplicates():
    frame = _tiny()
    frame.loc[1, "power"] = frame.loc[0, "power"] + 1
    _check(frame, "different power scores")
    frame = _tiny()
    frame.loc[3, "hedonism"] = np.nan
    _check(frame, "row 4", "value cell hedonism empty")
    frame = _tiny()
    frame = pd.concat([frame, frame.iloc[[4]]], ignore_index=True)
    _check(frame, "second row for the same model and prompt_id")


def test_headers_any_case_and_separator():
    frame = _tiny().rename(
        columns={"self_direction": "Self-Direction", "prompt_id": "Prompt ID", "universalism": "UNIVERSALISM"}
    )
    frame["response"] = "text"
    table = stats.validate_results(frame)
    required = [c for c in table.columns if c in stats.REQUIRED_COLUMNS]
    assert required == list(stats.REQUIRED_COLUMNS)  # canonical names, in order; optional outcomes may sit between


def test_blank_labels_and_string_flags_are_read():
    frame = _tiny().astype({"flagged": object, "score": object})
    frame.loc[0, "score"] = ""
    frame.loc[1, "flagged"] = "true"
    frame.loc[2, "flagged"] = " 0 "
    table = stats.validate_results(frame)
    assert np.isnan(table.loc[0, "score"]) and table.loc[1, "flagged"] == 1.0 and table.loc[2, "flagged"] == 0.0
    frame.loc[0, "flagged"] = None
    _check(frame, "both score and flagged are empty")


def test_whole_table_constant_values_is_an_error(planted_table):
    table = planted_table.copy()
    has = table["power"].notna()
    for v in VALUES:
        table.loc[has, v] = 2.0
    with pytest.raises(UserError, match="every value column is constant"):
        stats.analyze(table, n_boot=0, n_perm=0)
    table = planted_table.copy()
    table["score"], table["flagged"] = 3.0, 0.0
    with pytest.raises(UserError, match="constant across all"):
        stats.analyze(table, n_boot=0, n_perm=0)


def test_model_means_and_kinds(planted_table):
    means = stats.model_means(planted_table, "score")
    assert list(means.columns)[-1] == "overall"
    model = means.index[0]
    rows = planted_table[planted_table["model"] == model]
    assert means.loc[model, "overall"] == pytest.approx(rows["score"].mean())
    assert means.loc[model, "malware"] == pytest.approx(rows[rows["category"] == "malware"]["score"].mean())
    assert [stats.model_kind(m) for m in ("vanilla", "icl-hedonism", "control-benign", "power-close01")] == [
        "vanilla",
        "prompt_only",
        "control",
        "value_aligned",
    ]
    assert "vanilla" not in stats.profiled_models(planted_table)
