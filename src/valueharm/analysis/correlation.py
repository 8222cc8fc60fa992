"""Value x category correlations across models, with BH q-values and seeded bootstrap CIs.

Unit of analysis: the model. For each model with a target profile, its mean outcome in each
category (and over all its prompts, category "overall") is one observation, paired with the
model's 10 target value scores; a correlation is taken across models. Prompts are not the
unit: they are nested in models, and a model's value scores are constant over its prompts, so
treating prompts as independent would overstate n by the number of prompts.

Methods: Pearson, Spearman, Kendall (tau-b), and partial Pearson / partial Spearman, which
control for the other nine values (the study's extreme profiles make values collinear: one
value at 6 means all the others are at 1). p-values: t-distribution with n-2 (partial:
n-2-k) degrees of freedom for Pearson and Spearman, scipy's `kendalltau` for Kendall.
q-values: Benjamini-Hochberg within one outcome and method, over every defined
value x category cell including "overall". CIs: percentile bootstrap over models; one set of
resampled model indices serves every value, category and method, and each method is computed
for all cells at once with array operations.

An undefined correlation (fewer than 3 models, a constant column, a value that is a linear
combination of the controls) is a row with empty r/p/q and a `note` saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from valueharm.analysis.bootstrap import (
    blas_single_thread,
    bootstrap_correlations,
    column_basis,
    percentile_ci,
    resample_weights,
    rng_for,
    single_threaded_blas,
)
from valueharm.analysis.table import OUTCOMES, OVERALL, model_means, model_profiles, profiled_models
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

__all__ = [
    "METHODS",
    "CORRELATION_COLUMNS",
    "Correlation",
    "benjamini_hochberg",
    "bootstrap_correlations",
    "correlate",
    "correlation_matrix",
    "parse_methods",
    "partial_correlation",
    "percentile_ci",
    "resample_weights",
    "rng_for",
    "single_threaded_blas",
    "blas_single_thread",
    "value_correlations",
]

METHODS: tuple[str, ...] = ("pearson", "spearman", "kendall", "partial_pearson", "partial_spearman")
CORRELATION_COLUMNS: tuple[str, ...] = (
    "value",
    "category",
    "method",
    "r",
    "p",
    "q",
    "ci_low",
    "ci_high",
    "n",
    "outcome",
    "note",
)


def parse_methods(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        key = item.strip().lower().replace("-", "_")
        if not key:
            continue
        if key not in METHODS:
            raise UserError(f"unknown correlation method {item.strip()!r}", "choose from " + ", ".join(METHODS))
        if key not in out:
            out.append(key)
    if not out:
        raise UserError("no correlation method given", "choose from " + ", ".join(METHODS))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Multiple testing


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q); NaN entries stay NaN and are not counted in m."""
    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="mergesort")
    ranked = pv[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.clip(ranked, 0.0, 1.0)
    q[ok] = adj
    return q


# --------------------------------------------------------------------------------------------
# Building blocks (columns of X and Y are variables, rows are models)


def _constant(M: np.ndarray) -> np.ndarray:
    """Per column: True when the column does not vary (to rounding)."""
    scale = np.maximum(1.0, np.nanmax(np.abs(M), axis=0)) if M.size else np.ones(M.shape[1])
    return (np.nanmax(M, axis=0) - np.nanmin(M, axis=0)) <= 1e-12 * scale


def _ranks(M: np.ndarray) -> np.ndarray:
    return sps.rankdata(M, axis=0) if M.size else M.astype(float)


def _pearson_matrix(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    Xc = X - X.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Xc.T @ Yc) / np.sqrt(np.outer((Xc**2).sum(0), (Yc**2).sum(0)))
    return np.clip(r, -1.0, 1.0)


def _t_pvalue(r: np.ndarray, df: np.ndarray | int) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), r.shape)
    p = np.full(r.shape, np.nan)
    ok = np.isfinite(r) & (df >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r[ok] * np.sqrt(df[ok] / np.maximum(1.0 - r[ok] ** 2, 0.0))
    p[ok] = 2.0 * sps.t.sf(np.abs(t), df[ok])
    return p


def _partial_point(x: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Partial r of x with each column of Y given controls Z (n, k, intercept added here).

    Returns r (C,), degrees of freedom, and a note ('' when x is fine). Columns of Y that the
    controls explain exactly get NaN (the caller writes their note).
    """
    n = len(x)
    Zi = np.column_stack([np.ones(n), Z])
    U, rank = column_basis(Zi)
    k = int(rank) - 1
    df = n - 2 - k
    if df < 1:
        return (
            np.full(Y.shape[1], np.nan),
            np.asarray(df),
            (
                f"n={n} models is too few for a partial correlation controlling for {Z.shape[1]} variables "
                f"(needs at least {Z.shape[1] + 3} models with distinct profiles)"
            ),
        )
    W = np.column_stack([x, Y])
    R = W - U @ (U.T @ W)
    xc = x - x.mean()
    if (R[:, 0] ** 2).sum() <= 1e-18 * max((xc**2).sum(), 1e-300):
        return np.full(Y.shape[1], np.nan), np.asarray(df), "collinear"
    ry = R[:, 1:]
    Yc = Y - Y.mean(0)
    ss_y = (ry**2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (R[:, 0] @ ry) / np.sqrt((R[:, 0] ** 2).sum() * ss_y)
    r[ss_y <= 1e-18 * np.maximum((Yc**2).sum(0), 1e-300)] = np.nan
    return np.clip(r, -1, 1), np.asarray(df), ""


# --------------------------------------------------------------------------------------------
# Point estimates


@dataclass(frozen=True)
class Correlation:
    r: float
    p: float
    n: int
    note: str = ""

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.r))


def correlation_matrix(
    X, Y, method: str = "pearson", xnames: list[str] | None = None, ynames: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """r, p and notes (V x C): each column of X (n x V) with each column of Y (n x C).

    Partial methods control each X column for the other X columns. Notes are "" where r is
    defined and say why where it is not (r and p are NaN there).
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    n, V = X.shape
    xnames = xnames or [f"x{i}" for i in range(V)]
    ynames = ynames or [f"y{j}" for j in range(Y.shape[1])]
    C = Y.shape[1]
    r = np.full((V, C), np.nan)
    p = np.full((V, C), np.nan)
    notes = np.full((V, C), "", dtype=object)
    if n < 3:
        notes[:] = f"n={n} models: a correlation needs at least 3"
        return r, p, notes
    xconst, yconst = _constant(X), _constant(Y)
    if method in ("pearson", "spearman"):
        A, B = (X, Y) if method == "pearson" else (_ranks(X), _ranks(Y))
        r = _pearson_matrix(A, B)
        p = _t_pvalue(r, n - 2)
    elif method == "kendall":
        for i in range(V):
            for j in range(C):
                if not (xconst[i] or yconst[j]):
                    res = sps.kendalltau(X[:, i], Y[:, j])
                    r[i, j], p[i, j] = res.statistic, res.pvalue
    else:  # partial_pearson / partial_spearman
        A, B = (X, Y) if method == "partial_pearson" else (_ranks(X), _ranks(Y))
        for i in range(V):
            if xconst[i]:
                continue
            others = np.delete(A, i, axis=1)
            ri, df, note = _partial_point(A[:, i], B, others)
            if note:
                if note == "collinear":
                    note = (
                        f"{xnames[i]} is a linear combination of the other values across these {n} models "
                        "(collinear), so its partial correlation is undefined"
                    )
                notes[i, :] = note
                continue
            r[i] = ri
            p[i] = _t_pvalue(ri, int(df))
            for j in np.flatnonzero(~np.isfinite(ri) & ~yconst):
                notes[i, j] = (
                    f"the other values explain {ynames[j]} exactly across these {n} models; partial correlation undefined"
                )
    for i in np.flatnonzero(xconst):
        notes[i, :] = f"{xnames[i]} is constant ({np.nanmin(X[:, i]):g}) across the {n} models"
        r[i], p[i] = np.nan, np.nan
    for j in np.flatnonzero(yconst):
        msg = f"{ynames[j]} is constant ({np.nanmin(Y[:, j]):g}) across the {n} models"
        notes[:, j] = np.where(notes[:, j] == "", msg, notes[:, j])
        r[:, j], p[:, j] = np.nan, np.nan
    bad = ~np.isfinite(r) & (notes == "")
    notes[bad] = "correlation undefined for these data"
    p[~np.isfinite(r)] = np.nan
    return r, p, notes


def correlate(x, y, method: str = "pearson") -> Correlation:
    """One correlation of x with y by `method` (pearson, spearman, kendall), undefined cases noted."""
    method = parse_methods([method])[0]
    if method.startswith("partial"):
        raise UserError("use partial_correlation() for partial correlations")
    x, y = _pair(x, y)
    r, p, notes = correlation_matrix(x[:, None], y[:, None], method, ["x"], ["y"])
    return Correlation(float(r[0, 0]), float(p[0, 0]), len(x), str(notes[0, 0]))


def partial_correlation(x, y, controls, method: str = "pearson") -> Correlation:
    """Correlation of x and y after removing the linear effect of `controls` (n x k) from both.

    `method` "spearman" ranks x, y and every control first. df = n - 2 - k (k = rank of the
    controls), as for the t-test of x's coefficient in the regression of y on x and controls.
    """
    x, y = _pair(x, y)
    Z = np.asarray(controls, dtype=float).reshape(len(x), -1)
    if method not in ("pearson", "spearman"):
        raise UserError(f"unknown partial correlation method {method!r}", "choose pearson or spearman")
    if method == "spearman":
        x, y, Z = _ranks(x[:, None])[:, 0], _ranks(y[:, None])[:, 0], _ranks(Z)
    n = len(x)
    if n < 3:
        return Correlation(np.nan, np.nan, n, f"n={n}: a correlation needs at least 3")
    for name, col in (("x", x), ("y", y)):
        if _constant(col[:, None])[0]:
            return Correlation(np.nan, np.nan, n, f"{name} is constant ({col[0]:g})")
    r, df, note = _partial_point(x, y[:, None], Z)
    if note:
        return Correlation(
            np.nan, np.nan, n, "x is a linear combination of the controls (collinear)" if note == "collinear" else note
        )
    if not np.isfinite(r[0]):
        return Correlation(np.nan, np.nan, n, "the controls explain y exactly")
    return Correlation(float(r[0]), float(_t_pvalue(r, int(df))[0]), n)


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise UserError(f"x and y differ in length ({len(x)} and {len(y)})")
    return x, y


# --------------------------------------------------------------------------------------------
# The table


def value_correlations(
    table: pd.DataFrame,
    methods=METHODS,
    outcomes=OUTCOMES,
    n_boot: int = 1000,
    seed: int = 42,
    level: float = 0.95,
) -> pd.DataFrame:
    """correlations.csv: every value x category (and "overall") x method x outcome.

    Columns: value, category, method, r, p, q, ci_low, ci_high, n, outcome, note. Categories a
    model set did not answer for an outcome (e.g. no 1..5 scores on BeaverTails rows) are left
    out; cells with too few models or constant columns are kept with a note.
    """
    return _value_correlations(table, parse_methods(methods), outcomes, n_boot, seed, level)


@blas_single_thread
def _value_correlations(table, methods, outcomes, n_boot, seed, level) -> pd.DataFrame:
    if n_boot < 0:
        raise UserError(f"bootstrap resamples must be >= 0, got {n_boot}", "pass --bootstrap 0 to skip CIs")
    models = profiled_models(table)
    profiles = model_profiles(table, models)
    rows: list[pd.DataFrame] = []
    for outcome in outcomes:
        means = model_means(table, outcome, models)
        means = means.loc[:, means.notna().any(axis=0)] if len(means) else means
        if means.shape[1] == 0 or (list(means.columns) == [OVERALL] and means[OVERALL].isna().all()):
            continue
        # one block per set of models that answered (usually a single block)
        patterns: dict[tuple[str, ...], list[str]] = {}
        for cat in means.columns:
            have = tuple(means.index[means[cat].notna().to_numpy()])
            patterns.setdefault(have, []).append(cat)
        for have, cats in patterns.items():
            X = profiles.loc[list(have)].to_numpy(dtype=float)
            Y = means.loc[list(have), cats].to_numpy(dtype=float)
            idx = (
                rng_for(seed, "models", *have).integers(0, len(have), size=(n_boot, len(have)))
                if n_boot and len(have) >= 3
                else None
            )
            ynames = [f"{outcome} in {c}" if c != OVERALL else f"{outcome} overall" for c in cats]
            for method in methods:
                r, p, notes = correlation_matrix(X, Y, method, list(VALUES), ynames)
                lo = hi = np.full(r.shape, np.nan)
                finite = np.zeros(r.shape, dtype=int)
                if idx is not None:
                    lo, hi, finite = percentile_ci(bootstrap_correlations(X, Y, method, idx), level)
                for i, value in enumerate(VALUES):
                    for j, cat in enumerate(cats):
                        note = str(notes[i, j])
                        defined = np.isfinite(r[i, j])
                        cl, ch = (lo[i, j], hi[i, j]) if defined and finite[i, j] > 0 else (np.nan, np.nan)
                        if defined and idx is not None and finite[i, j] < n_boot:
                            note = (
                                (
                                    f"CI from {finite[i, j]} of {n_boot} resamples (in the others a column was "
                                    "constant or the values collinear)"
                                )
                                if finite[i, j]
                                else "no bootstrap resample was defined; no CI"
                            )
                        rows.append((value, cat, method, r[i, j], p[i, j], cl, ch, len(have), outcome, note))
    out = pd.DataFrame(
        rows, columns=["value", "category", "method", "r", "p", "ci_low", "ci_high", "n", "outcome", "note"]
    )
    out.insert(5, "q", np.nan)
    for _, index in out.groupby(["outcome", "method"], sort=False).groups.items():
        out.loc[index, "q"] = benjamini_hochberg(out.loc[index, "p"].to_numpy())
    return _order(out, methods)


def _order(out: pd.DataFrame, methods) -> pd.DataFrame:
    if out.empty:
        return out.reindex(columns=list(CORRELATION_COLUMNS))
    cats = sorted(c for c in out["category"].unique() if c != OVERALL) + [OVERALL]
    out = out.assign(
        _o=out["outcome"].map({o: i for i, o in enumerate(OUTCOMES)}),
        _m=out["method"].map({m: i for i, m in enumerate(methods)}),
        _v=out["value"].map({v: i for i, v in enumerate(VALUES)}),
        _c=out["category"].map({c: i for i, c in enumerate(cats)}),
    ).sort_values(["_o", "_m", "_v", "_c"], kind="mergesort")
    out = out.drop(columns=["_o", "_m", "_v", "_c"]).reset_index(drop=True)
    out["n"] = out["n"].astype(int)
    return out[list(CORRELATION_COLUMNS)]
