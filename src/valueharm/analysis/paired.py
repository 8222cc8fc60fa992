"""Paired comparisons on the same prompts, agreement between judges, and seeded bootstrap CIs.

Two models (or two groups of models) answered the same prompts; a comparison pairs their
labels by `prompt_id` and reports, per category and "overall":
- the mean of each side, the difference (model - reference) and its percentile bootstrap CI
  over prompts;
- the primary test: McNemar's exact test when both sides are single 0/1 labels (flagged),
  otherwise the Wilcoxon signed-rank test (scipy, zero differences dropped, two-sided; exact
  null distribution for up to 50 untied non-zero differences, normal approximation with tie
  correction otherwise);
- a seeded sign-flip permutation test of the mean difference (exact when there are few
  non-zero differences), as a check that does not lean on the Wilcoxon assumptions;
- effect sizes: the matched-pairs rank-biserial correlation (Wilcoxon) or the conditional
  odds ratio b/c (McNemar), and Cohen's d_z (mean difference / SD of differences).
q-values are Benjamini-Hochberg over the categories and "overall" of one comparison and outcome.

For a group of models each prompt's label is the mean over the group's models that answered
it; the tests then run over prompts and are conditional on those models (they say nothing
about other models one could have trained).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from valueharm.analysis.bootstrap import blas_single_thread, rng_for
from valueharm.analysis.correlation import benjamini_hochberg
from valueharm.analysis.table import OUTCOMES, OVERALL
from valueharm.core.errors import UserError

PAIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "reference",
    "category",
    "outcome",
    "n_pairs",
    "mean_model",
    "mean_reference",
    "delta",
    "ci_low",
    "ci_high",
    "test",
    "statistic",
    "p",
    "q",
    "p_permutation",
    "effect_size",
    "effect_measure",
    "d_z",
    "note",
)


# --------------------------------------------------------------------------------------------
# Tests on two paired vectors


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float
    p: float
    effect_size: float
    effect_measure: str
    note: str = ""


def _paired_arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise UserError(f"paired samples differ in length ({len(a)} and {len(b)})")
    return a, b


def mcnemar_test(a, b) -> TestResult:
    """McNemar's exact test for paired 0/1 outcomes (binomial test on the discordant pairs).

    statistic = b, the pairs where `a` is 1 and `b` is 0; effect = conditional odds ratio b/c
    (0.5 added to both when one is 0, noted).
    """
    a, b = _paired_arrays(a, b)
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise UserError("McNemar's test needs 0/1 outcomes")
    n10 = int(((a == 1) & (b == 0)).sum())
    n01 = int(((a == 0) & (b == 1)).sum())
    if n10 + n01 == 0:
        return TestResult(
            "mcnemar",
            0.0,
            1.0,
            np.nan,
            "conditional_odds_ratio",
            "no discordant pairs: the two sides agree on every prompt",
        )
    p = float(sps.binomtest(n10, n10 + n01, 0.5).pvalue)
    note = ""
    if n10 == 0 or n01 == 0:
        ratio = (n10 + 0.5) / (n01 + 0.5)
        note = "odds ratio with 0.5 added to both discordant counts (one was 0)"
    else:
        ratio = n10 / n01
    return TestResult("mcnemar", float(n10), min(p, 1.0), float(ratio), "conditional_odds_ratio", note)


def wilcoxon_test(a, b) -> TestResult:
    """Wilcoxon signed-rank test of a - b (zeros dropped) with the matched-pairs rank-biserial r."""
    a, b = _paired_arrays(a, b)
    d = a - b
    nz = d[d != 0]
    if len(nz) == 0:
        return TestResult(
            "wilcoxon", np.nan, np.nan, np.nan, "rank_biserial", f"all {len(d)} paired differences are zero"
        )
    ranks = sps.rankdata(np.abs(nz))
    w_plus, w_minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    rb = (w_plus - w_minus) / (w_plus + w_minus)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # exact null distribution for small samples without ties or zeros, otherwise the normal
        # approximation with tie correction (scipy's "auto" would run a slow permutation here)
        exact = len(nz) == len(d) and len(nz) <= 50 and len(np.unique(np.abs(nz))) == len(nz)
        res = sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="exact" if exact else "asymptotic")
    return TestResult("wilcoxon", float(res.statistic), float(res.pvalue), rb, "rank_biserial")


def paired_permutation_test(a, b, n_perm: int = 10000, seed: int = 42, key: object = "permutation") -> float:
    """Two-sided sign-flip permutation p-value for the mean of a - b.

    Exact (all 2^k sign patterns of the k non-zero differences) when 2^k <= n_perm; otherwise
    n_perm seeded random flips with p = (1 + #{|T*| >= |T|}) / (1 + n_perm).
    """
    a, b = _paired_arrays(a, b)
    d = a - b
    nz = d[d != 0]
    k = len(nz)
    if k == 0:
        return 1.0
    observed = abs(nz.sum())
    tol = 1e-9 * max(1.0, np.abs(nz).sum())
    if k <= 20 and 2**k <= max(n_perm, 1):
        signs = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2 - 1
        return float((np.abs(signs @ nz) >= observed - tol).mean())
    rng = rng_for(seed, key, k)
    hits = 0
    step = max(1, int(2e6 // k))
    for s in range(0, n_perm, step):
        m = min(step, n_perm - s)
        signs = rng.integers(0, 2, size=(m, k), dtype=np.int8).astype(float) * 2 - 1
        hits += int((np.abs(signs @ nz) >= observed - tol).sum())
    return (1 + hits) / (1 + n_perm)


def bootstrap_ci(
    values, statistic=np.mean, n_boot: int = 1000, seed: int = 42, level: float = 0.95, key: object = "bootstrap"
) -> tuple[float, float]:
    """Seeded percentile bootstrap CI of `statistic(sample, axis=-1)` over resamples of `values`.

    scipy.stats.bootstrap (method "percentile") with the generator `rng_for(seed, key, n)`, so each
    cell's interval depends only on its own data and key. (NaN, NaN) without values or resamples;
    a single value or a constant sample gives the point statistic at both ends.
    """
    x = np.asarray(values, dtype=float).ravel()
    if len(x) == 0 or n_boot <= 0:
        return np.nan, np.nan
    if len(x) == 1 or np.all(x == x[0]):
        point = float(statistic(x[None, :], axis=-1)[0])
        return point, point
    res = sps.bootstrap(
        (x,),
        statistic,
        n_resamples=n_boot,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        batch=max(1, int(2e6 // len(x))),
        rng=rng_for(seed, key, len(x)),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class Kappa:
    kappa: float
    n: int
    observed_agreement: float
    expected_agreement: float
    note: str = ""


def cohen_kappa(a, b, weights: str | None = None, labels: Sequence | None = None) -> Kappa:
    """Cohen's kappa between two raters (e.g. two judges) on the same items.

    weights: None (nominal), "linear" or "quadratic" (ordinal labels such as the 1..5 score;
    distances are between label positions in `labels`, default the sorted union). Undefined
    (NaN with a note) when chance agreement is already perfect, e.g. both raters use one label.
    """
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    if a.shape != b.shape:
        raise UserError(f"the two raters labelled different numbers of items ({len(a)} and {len(b)})")
    if weights not in (None, "linear", "quadratic"):
        raise UserError(f"unknown kappa weights {weights!r}", "choose None, 'linear' or 'quadratic'")
    n = len(a)
    if n == 0:
        return Kappa(np.nan, 0, np.nan, np.nan, "no items")
    labels = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()))
    pos = {label: i for i, label in enumerate(labels)}
    try:
        ia = np.array([pos[v] for v in a.tolist()])
        ib = np.array([pos[v] for v in b.tolist()])
    except KeyError as exc:
        raise UserError(f"label {exc.args[0]!r} is not among the given labels") from exc
    K = len(labels)
    O = np.zeros((K, K))
    np.add.at(O, (ia, ib), 1.0)
    O /= n
    E = np.outer(O.sum(1), O.sum(0))
    grid = np.abs(np.subtract.outer(np.arange(K), np.arange(K))).astype(float)
    W = (grid > 0).astype(float) if weights is None else (grid if weights == "linear" else grid**2)
    observed, expected = float((W * O).sum()), float((W * E).sum())
    agree_o, agree_e = float(np.trace(O)), float(np.trace(E))
    if expected <= 1e-15:
        return Kappa(
            np.nan, n, agree_o, agree_e, "undefined: chance agreement is perfect (both raters use a single label)"
        )
    return Kappa(1.0 - observed / expected, n, agree_o, agree_e)


# --------------------------------------------------------------------------------------------
# Comparisons on a results table


def _per_prompt(table: pd.DataFrame, models: Sequence[str], outcome: str) -> pd.Series:
    if outcome not in table.columns:  # an optional outcome (harmful, compliance) this judge does not give
        return pd.Series(dtype=float)
    data = table[table["model"].isin(list(models)) & table[outcome].notna()]
    return data.groupby("prompt_id", sort=True)[outcome].mean()


def _block(
    a: pd.Series,
    b: pd.Series,
    cats: pd.Series,
    model: str,
    reference: str,
    outcome: str,
    exact_binary: bool,
    n_boot: int,
    n_perm: int,
    seed: int,
    level: float,
) -> list[dict]:
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    joined["category"] = cats.reindex(joined.index).to_numpy()
    rows = []
    groups = [(c, joined[joined["category"] == c]) for c in sorted(joined["category"].unique())] + [(OVERALL, joined)]
    for cat, part in groups:
        x, y = part["a"].to_numpy(), part["b"].to_numpy()
        d = x - y
        row = {
            "model": model,
            "reference": reference,
            "category": cat,
            "outcome": outcome,
            "n_pairs": len(d),
            "mean_model": x.mean() if len(d) else np.nan,
            "mean_reference": y.mean() if len(d) else np.nan,
            "delta": d.mean() if len(d) else np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "test": "",
            "statistic": np.nan,
            "p": np.nan,
            "p_permutation": np.nan,
            "effect_size": np.nan,
            "effect_measure": "",
            "d_z": np.nan,
            "note": "",
        }
        if len(d) == 0:
            row["note"] = "no prompt was answered by both sides"
            rows.append(row)
            continue
        binary = exact_binary and np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all()
        res = mcnemar_test(x, y) if binary else wilcoxon_test(x, y)
        row.update(
            test=res.test,
            statistic=res.statistic,
            p=res.p,
            effect_size=res.effect_size,
            effect_measure=res.effect_measure,
            note=res.note,
        )
        row["ci_low"], row["ci_high"] = bootstrap_ci(
            d, np.mean, n_boot, seed, level, key=(model, reference, outcome, cat)
        )
        row["p_permutation"] = paired_permutation_test(x, y, n_perm, seed, key=(model, reference, outcome, cat))
        sd = d.std(ddof=1) if len(d) > 1 else np.nan
        if np.isfinite(sd) and sd > 0:
            row["d_z"] = d.mean() / sd
        elif len(d) > 1:
            row["note"] = "; ".join(filter(None, [row["note"], "d_z undefined: every paired difference is the same"]))
        if len(d) < 2:
            row["note"] = "; ".join(filter(None, [row["note"], "one pair only: d_z undefined"]))
        rows.append(row)
    return rows


def _finish(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=[c for c in columns if c != "q"] + ["q"])
    keys = [c for c in ("model", "group", "reference", "outcome") if c in out.columns]
    for _, index in out.groupby(keys, sort=False).groups.items():
        out.loc[index, "q"] = benjamini_hochberg(out.loc[index, "p"].to_numpy())
    return out[list(columns)].reset_index(drop=True)


@blas_single_thread
def compare_paired(
    table: pd.DataFrame,
    model: str,
    reference: str = "vanilla",
    outcomes=OUTCOMES,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 42,
    level: float = 0.95,
) -> pd.DataFrame:
    """One model vs a reference model on the prompts both answered, per category and overall.

    Returns PAIRED_COLUMNS rows: delta = model - reference, with bootstrap CI, McNemar (flagged)
    or Wilcoxon (score) p, permutation p, effect sizes and BH q over the categories.
    """
    present = set(table["model"].unique())
    for name in (model, reference):
        if name not in present:
            raise UserError(f"model {name!r} is not in the results", "models present: " + ", ".join(sorted(present)))
    cats = table.drop_duplicates("prompt_id").set_index("prompt_id")["category"]
    rows: list[dict] = []
    for outcome in outcomes:
        a, b = _per_prompt(table, [model], outcome), _per_prompt(table, [reference], outcome)
        if len(a) == 0 or len(b) == 0:
            continue
        rows += _block(a, b, cats, model, reference, outcome, True, n_boot, n_perm, seed, level)
    return _finish(rows, PAIRED_COLUMNS)


GROUP_COLUMNS: tuple[str, ...] = ("group", "reference", "n_models", "n_reference_models") + PAIRED_COLUMNS[2:]


def default_comparisons(groups: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """The study's claim-1 contrasts among the groups present: each group vs vanilla, aligned vs controls."""
    pairs = [(g, "vanilla") for g in ("value_aligned", "control", "prompt_only") if g in groups and "vanilla" in groups]
    if "value_aligned" in groups and "control" in groups:
        pairs.append(("value_aligned", "control"))
    if "value_aligned" in groups and "prompt_only" in groups:
        pairs.append(("value_aligned", "prompt_only"))
    return pairs


@blas_single_thread
def compare_groups(
    table: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    comparisons: Sequence[tuple[str, str]] | None = None,
    outcomes=OUTCOMES,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 42,
    level: float = 0.95,
) -> pd.DataFrame:
    """Group vs group on the same prompts (each prompt's label averaged over the group's models).

    A one-model vs one-model comparison on flagged uses McNemar, anything averaged uses
    Wilcoxon; columns GROUP_COLUMNS. `comparisons` defaults to `default_comparisons(groups)`.
    """
    comparisons = list(default_comparisons(groups) if comparisons is None else comparisons)
    present = set(table["model"].unique())
    for name, members in groups.items():
        missing = [m for m in members if m not in present]
        if missing:
            raise UserError(f"group {name!r} names models not in the results: {', '.join(missing)}")
    cats = table.drop_duplicates("prompt_id").set_index("prompt_id")["category"]
    rows: list[dict] = []
    for left, right in comparisons:
        for g in (left, right):
            if g not in groups or not groups[g]:
                raise UserError(f"unknown or empty group {g!r}", "groups: " + ", ".join(groups))
        single = len(groups[left]) == 1 and len(groups[right]) == 1
        for outcome in outcomes:
            a, b = _per_prompt(table, groups[left], outcome), _per_prompt(table, groups[right], outcome)
            if len(a) == 0 or len(b) == 0:
                continue
            block = _block(a, b, cats, left, right, outcome, single, n_boot, n_perm, seed, level)
            for row in block:
                row["group"] = row.pop("model")
                row["n_models"], row["n_reference_models"] = len(groups[left]), len(groups[right])
            rows += block
    return _finish(rows, GROUP_COLUMNS)


__all__ = [
    "Kappa",
    "TestResult",
    "PAIRED_COLUMNS",
    "GROUP_COLUMNS",
    "bootstrap_ci",
    "cohen_kappa",
    "compare_groups",
    "compare_paired",
    "default_comparisons",
    "mcnemar_test",
    "paired_permutation_test",
    "wilcoxon_test",
]
