"""Selecting 14 anchors x 10 nearest over 50,000 respondents must take well under a second."""

from __future__ import annotations

import time

import numpy as np

from valueharm.data.survey import Scores
from valueharm.profiles import selection as P

N = 50_000


def _scores() -> Scores:
    rng = np.random.RandomState(0)
    codes = rng.randint(1, 7, size=(N, 21)).astype(float)
    # plain means of 2-3 items, like real respondent vectors (many exact ties)
    matrix = np.column_stack([codes[:, 2 * k : 2 * k + 2].mean(axis=1) for k in range(10)])
    return Scores(matrix, [str(i) for i in range(N)], np.arange(N), "reversed", False, N)


def test_select_14x10_over_50k(benchmark) -> None:
    scores = _scores()
    start = time.perf_counter()
    manifest = P.select_profiles(scores, 10)
    once = time.perf_counter() - start
    assert len(manifest["profiles"]) == 154
    assert once < 1.0, f"selection took {once:.2f}s"
    result = benchmark(P.select_profiles, scores, 10)
    assert result == manifest


def test_nearest_kernel_14x10_over_50k(benchmark) -> None:
    scores = _scores()
    anchors = np.stack([P.anchor_vector(a) for a in P.ANCHOR_NAMES])
    idx, _ = benchmark(P.nearest, anchors, scores.matrix, 10)
    assert idx.shape == (14, 10)
