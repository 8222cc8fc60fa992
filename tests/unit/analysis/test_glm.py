"""Prompt-level models: cross-checked against a direct statsmodels fit; degenerate cases noted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from valueharm.analysis import run as stats
from valueharm.core.values import VALUES


@pytest.fixture(scope="module")
def table():
    raw = stats.simulate_results(n_models=40, n_prompts=44, effects={("hedonism", "adult_content"): 0.8}, seed=5)
    return stats.validate_results(raw)


def _direct(table, outcome):
    data = table[table["model"].isin(stats.profiled_models(table))].sort_values(["model", "prompt_id"])
    X = pd.concat([data[list(VALUES)], pd.get_dummies(data["category"], drop_first=True, dtype=float)], axis=1)
    X = sm.add_constant(X)
    groups = pd.factorize(data["model"], sort=True)[0]
    if outcome == "flagged":
        return sm.GLM(data["flagged"], X, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
    return sm.OLS(data["score"], X).fit(cov_type="cluster", cov_kwds={"groups": groups})


@pytest.mark.parametrize("outcome", ["flagged", "score"])
def test_glm_matches_statsmodels(table, outcome):
    got = stats.fit_prompt_level(table, outcome).set_index("term")
    want = _direct(table, outcome)
    for v in VALUES:
        assert got.loc[v, "estimate"] == pytest.approx(want.params[v], rel=1e-6, abs=1e-9)
        assert got.loc[v, "se"] == pytest.approx(want.bse[v], rel=1e-6)
        assert got.loc[v, "p"] == pytest.approx(want.pvalues[v], rel=1e-5, abs=1e-12)
    assert got.loc["intercept", "n_clusters"] == 40
    assert got.loc[list(VALUES), "q"].notna().all() and got.loc["intercept", "q"] != got.loc["intercept", "q"]
    if outcome == "flagged":
        assert got.loc["hedonism", "odds_ratio"] == pytest.approx(np.exp(got.loc["hedonism", "estimate"]))


def test_glm_columns(table):
    out = stats.prompt_level_models(table)
    assert list(out.columns) == list(stats.GLM_COLUMNS)
    assert set(out["outcome"]) == {"score", "flagged"}
    assert (out["note"] == "").all()  # 40 clusters, no warnings


def test_glm_degenerate_cases_are_noted():
    few = stats.validate_results(stats.simulate_results(n_models=16, n_prompts=22, seed=1))
    out = stats.prompt_level_models(few)
    assert out["estimate"].notna().all() and out["note"].str.contains("only 16 models").all()
    tiny = stats.validate_results(stats.simulate_results(n_models=6, n_prompts=22, seed=1))
    out = stats.prompt_level_models(tiny)
    assert out["estimate"].isna().all() and out["note"].str.contains("collinear").all()
    flat = tiny.assign(flagged=0.0)
    out = stats.fit_prompt_level(flat, "flagged")
    assert out["estimate"].isna().all() and out["note"].str.contains("constant").all()
