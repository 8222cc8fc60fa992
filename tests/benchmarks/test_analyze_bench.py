"""Performance: `analyze` on 154 models x 1,000 prompts with 1,000 bootstrap resamples, under 60 s.

The table is simulated (valueharm.analysis.simulate) with three planted links, written as CSV, and
analysed end to end as `valueharm analyze` does it: read and validate, five correlation methods
x two outcomes with 1,000 model resamples each, both prompt-level models, group comparisons
with 10,000 permutations, the hypothesis registry, and writing the outputs.
"""

from __future__ import annotations

import time

import pytest

from valueharm.analysis import run as stats

BUDGET_S = 60.0
PLANTED = {("hedonism", "adult_content"): 0.5, ("power", "malware"): -0.5, ("universalism", "fraud_deception"): -0.5}


@pytest.fixture(scope="module")
def results_csv(tmp_path_factory):
    table = stats.simulate_results(
        n_models=154, n_prompts=1000, effects=PLANTED, seed=11, reference_models=("vanilla", "control-benign")
    )
    path = tmp_path_factory.mktemp("bench") / "results.csv"
    table.to_csv(path, index=False)
    return path


def test_analyze_154_models_1000_prompts(benchmark, results_csv, tmp_path):
    out = tmp_path / "analysis"
    start = time.perf_counter()
    analysis = benchmark.pedantic(
        stats.run_analysis,
        args=(results_csv, out),
        kwargs={"n_boot": 1000, "seed": 1},
        rounds=1,
        iterations=1,
        warmup_rounds=0,
    )
    elapsed = time.perf_counter() - start
    corr = analysis.correlations
    assert corr["r"].notna().all()
    assert len(corr) == 10 * 12 * 5 * 2 and (corr["n"] == 154).all()
    planted = corr[(corr["method"] == "partial_pearson") & (corr["outcome"] == "score")].set_index(
        ["value", "category"]
    )
    for cell in PLANTED:
        assert planted.loc[cell, "q"] < 0.05
    assert (out / "correlations.csv").exists()
    print(f"\nanalyze 154 models x 1,000 prompts, 1,000 resamples: {elapsed:.1f} s")
    assert elapsed < BUDGET_S, f"{elapsed:.1f} s >= {BUDGET_S} s"
