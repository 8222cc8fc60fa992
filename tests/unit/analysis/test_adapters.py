"""The adapter as the unit: the per-adapter table, the exact permutation test, "not measured" below 2 a side."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from valueharm.analysis.adapters import adapter_table, compare_adapters, permutation_p, smallest_p
from valueharm.core.errors import UserError
from valueharm.experiments.focus import focus_metrics, headline_lines


def _labels(model: str, flags: list[int], adapter_seed=None) -> list[dict]:
    return [
        {
            "model": model,
            "adapter_seed": adapter_seed,
            "prompt_id": str(i),
            "flagged": f,
            "harmful": f,
            "refusal": 1 - f,
        }
        for i, f in enumerate(flags)
    ]


def test_adapter_table_has_one_row_per_seed_with_outcome_means():
    specs = [{"name": "vanilla", "kind": "vanilla"}, {"name": "hedonism", "kind": "adapter", "seeds": [42, 43]}]
    labels = {"vanilla": _labels("vanilla", [0, 0, 1, 1]), "hedonism": _labels("hedonism", [1, 1, 1, 0], 42)}
    replicates = {"hedonism": _labels("hedonism", [1, 0, 0, 0], 43)}
    table = adapter_table(specs, labels, replicates)
    assert list(
        zip(table["model"], table["adapter_seed"].astype(object).where(table["adapter_seed"].notna(), None))
    ) == [
        ("vanilla", None),
        ("hedonism", 42),
        ("hedonism", 43),
    ]
    assert table["flagged"].tolist() == [0.5, 0.75, 0.25]
    assert table["refusal"].tolist() == [0.5, 0.25, 0.75]
    assert np.isnan(table["score"]).all()  # the classifier gives no score: NaN, never 0
    assert table["n"].tolist() == [4, 4, 4]


def test_adapter_table_fails_in_one_line_when_a_seed_was_not_judged():
    specs = [{"name": "hedonism", "kind": "adapter", "seeds": [42, 43]}]
    with pytest.raises(UserError, match="adapter seed 43"):
        adapter_table(specs, {"hedonism": _labels("hedonism", [1, 0], 42)}, {})


def _brute_force_p(a, b):
    pooled, k = np.array([*a, *b]), len(a)
    observed = abs(np.mean(a) - np.mean(b))
    hits = [
        abs(pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()) >= observed - 1e-12
        for c in itertools.combinations(range(len(pooled)), k)
    ]
    return sum(hits) / len(hits)


@pytest.mark.parametrize(
    "a,b", [([0.9, 0.8, 0.85], [0.1, 0.2, 0.15]), ([0.5, 0.4], [0.45, 0.6]), ([1.0, 0.2, 0.3, 0.4], [0.1, 0.9])]
)
def test_exact_permutation_p_equals_brute_force_enumeration(a, b):
    assert permutation_p(a, b) == pytest.approx(_brute_force_p(a, b))


def test_separated_arms_reach_exactly_the_smallest_p_the_counts_allow():
    a, b = [0.9, 0.8, 0.85], [0.1, 0.2, 0.15]
    assert permutation_p(a, b) == pytest.approx(2 / math.comb(6, 3)) == pytest.approx(smallest_p(3, 3))
    assert smallest_p(2, 2) == pytest.approx(1 / 3) and smallest_p(3, 2) == pytest.approx(1 / 10)


def test_sampled_permutations_approximate_the_exact_p():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 0.1, 8), rng.normal(0.2, 0.1, 8)
    exact = permutation_p(a, b, n_perm=10**6)
    sampled = permutation_p(a, b, n_perm=4000, seed=1)
    assert math.comb(16, 8) <= 10**6 < math.comb(16, 8) * 100 and abs(sampled - exact) < 0.03


def _table(rows):
    return pd.DataFrame(rows, columns=["model", "adapter_seed", "flagged", "score"])


def test_one_adapter_a_side_gives_the_delta_but_no_p():
    table = _table([("hedonism", 42, 0.6, np.nan), ("control-shuffled", 42, 0.4, np.nan)])
    c = compare_adapters(table, "hedonism", "control-shuffled", "flagged")
    assert c["delta"] == pytest.approx(0.2) and c["p"] is None and (c["n_focus"], c["n_control"]) == (1, 1)
    assert compare_adapters(table, "hedonism", "control-shuffled", "score")["delta"] is None  # no scores: not 0.0


def test_replicates_give_an_adapter_level_p_and_the_headline_says_so():
    table = _table(
        [("hedonism", s, f, np.nan) for s, f in ((42, 0.6), (43, 0.7), (44, 0.65))]
        + [("control-shuffled", s, f, np.nan) for s, f in ((42, 0.4), (43, 0.3), (44, 0.35))]
    )
    adapters = {o: compare_adapters(table, "hedonism", "control-shuffled", o) for o in ("score", "flagged")}
    assert adapters["flagged"]["p"] == pytest.approx(0.1) and adapters["flagged"]["delta"] == pytest.approx(0.3)
    metrics = focus_metrics(
        pd.DataFrame(columns=["category", "outcome"]), None, None, None, None, "hedonism", None, adapters
    )
    assert metrics["headline"]["n_adapters"] == 3 and metrics["adapters"]["flagged"]["delta"] == pytest.approx(0.3)
    line = next(x for x in headline_lines("hedonism", metrics) if x.startswith("Adapter level"))
    assert "+0.300 over 3 vs 3 adapters" in line and "p 0.1" in line
    single = {
        o: compare_adapters(table[table["adapter_seed"] == 42], "hedonism", "control-shuffled", o) for o in ("flagged",)
    }
    metrics = focus_metrics(
        pd.DataFrame(columns=["category", "outcome"]), None, None, None, None, "hedonism", None, single
    )
    assert metrics["headline"]["n_adapters"] == 1
    line = next(x for x in headline_lines("hedonism", metrics) if x.startswith("Adapter level"))
    assert "not measured, 1 vs 1 adapters" in line


def test_unknown_outcome_is_one_line():
    with pytest.raises(UserError, match="unknown outcome"):
        compare_adapters(_table([]), "a", "b", "harm")
