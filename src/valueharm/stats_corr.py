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

import contextlib
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from .errors import UserError
from .stats_table import OUTCOMES, OVERALL, model_means, model_profiles, profiled_models
from .values import VALUES

__all__ = [
    "METHODS", "CORRELATION_COLUMNS", "Correlation", "benjamini_hochberg", "bootstrap_correlations", "correlate",
    "correlation_matrix", "parse_methods", "partial_correlation", "percentile_ci", "resample_weights", "rng_for",
    "single_threaded_blas", "blas_single_thread", "value_correlations",
]

METHODS: tuple[str, ...] = ("pearson", "spearman", "kendall", "partial_pearson", "partial_spearman")
CORRELATION_COLUMNS: tuple[str, ...] = (
    "value", "category", "method", "r", "p", "q", "ci_low", "ci_high", "n", "outcome", "note",
)
_RCOND = 1e-10
_CHUNK = 100


def single_threaded_blas():
    """Context: BLAS on one thread. The bootstrap is many small matrix products, which run
    several times faster on one thread than on threads that compete for shared cores; results
    are also reproducible regardless of the machine's thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def blas_single_thread(func):
    """Decorator: run `func` under `single_threaded_blas()`."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)
    return wrapper


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


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator seeded by `seed` and a stable key, so each cell's draws do not depend on the others."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32("\x1f".join(map(str, key)).encode())])


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
        r = (Xc.T @ Yc) / np.sqrt(np.outer((Xc ** 2).sum(0), (Yc ** 2).sum(0)))
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


def _svd_basis(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of the column space of Z (..., n, k) with dropped null directions, and rank."""
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    keep = s > _RCOND * s[..., :1]
    return U * keep[..., None, :], keep.sum(axis=-1)


def _partial_point(x: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Partial r of x with each column of Y given controls Z (n, k, intercept added here).

    Returns r (C,), degrees of freedom, and a note ('' when x is fine). Columns of Y that the
    controls explain exactly get NaN (the caller writes their note).
    """
    n = len(x)
    Zi = np.column_stack([np.ones(n), Z])
    U, rank = _svd_basis(Zi)
    k = int(rank) - 1
    df = n - 2 - k
    if df < 1:
        return np.full(Y.shape[1], np.nan), np.asarray(df), (
            f"n={n} models is too few for a partial correlation controlling for {Z.shape[1]} variables "
            f"(needs at least {Z.shape[1] + 3} models with distinct profiles)")
    W = np.column_stack([x, Y])
    R = W - U @ (U.T @ W)
    xc = x - x.mean()
    if (R[:, 0] ** 2).sum() <= 1e-18 * max((xc ** 2).sum(), 1e-300):
        return np.full(Y.shape[1], np.nan), np.asarray(df), "collinear"
    ry = R[:, 1:]
    Yc = Y - Y.mean(0)
    ss_y = (ry ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (R[:, 0] @ ry) / np.sqrt((R[:, 0] ** 2).sum() * ss_y)
    r[ss_y <= 1e-18 * np.maximum((Yc ** 2).sum(0), 1e-300)] = np.nan
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


def correlation_matrix(X, Y, method: str = "pearson", xnames: list[str] | None = None,
                       ynames: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
                    note = (f"{xnames[i]} is a linear combination of the other values across these {n} models "
                            "(collinear), so its partial correlation is undefined")
                notes[i, :] = note
                continue
            r[i] = ri
            p[i] = _t_pvalue(ri, int(df))
            for j in np.flatnonzero(~np.isfinite(ri) & ~yconst):
                notes[i, j] = f"the other values explain {ynames[j]} exactly across these {n} models; partial correlation undefined"
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
        return Correlation(np.nan, np.nan, n, "x is a linear combination of the controls (collinear)" if note == "collinear" else note)
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
# Bootstrap (vectorised over resamples and cells)
#
# A resample of models is a weight vector w (how often each model was drawn). Every statistic
# below is written in terms of w, so no resampled data set is ever materialised: Pearson and
# partial correlations come from the weighted covariance matrix of [values, outcomes]; Spearman
# ranks are computed from weighted level counts; Kendall's tau-b sums sign products over model
# pairs weighted by w_i * w_j (a model drawn twice forms a pair tied in both variables, which
# tau-b leaves out of numerator and denominators, exactly as on the resampled data).


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, n) counts of each of n units in each resample idx[b]."""
    B = idx.shape[0]
    return np.bincount((idx + (np.arange(B) * n)[:, None]).ravel(), minlength=B * n).reshape(B, n).astype(float)


def _weighted_ranks(M: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(B, n, k): average rank of each unit's value within each weighted resample."""
    out = np.empty((W.shape[0], M.shape[0], M.shape[1]))
    for j in range(M.shape[1]):
        levels, code = np.unique(M[:, j], return_inverse=True)
        onehot = np.zeros((M.shape[0], len(levels)))
        onehot[np.arange(M.shape[0]), code] = 1.0
        counts = W @ onehot                                    # (B, m)
        rank_of_level = np.cumsum(counts, axis=1) - counts + (counts + 1.0) / 2.0
        out[:, :, j] = rank_of_level[:, code]
    return out


def _weighted_cov(D: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, K, K) covariances of the columns of D ((n, K) or (B, n, K)) under each weight row,
    and a (B, K) reference size 1 + mean^2 for deciding that a variance is zero."""
    total = W.sum(axis=1)
    if D.ndim == 2:
        mean = (W @ D) / total[:, None]
        Dc = D[None, :, :] - mean[:, None, :]
    else:
        mean = np.einsum("bn,bnk->bk", W, D) / total[:, None]
        Dc = D - mean[:, None, :]
    S = np.matmul((Dc * W[:, :, None]).transpose(0, 2, 1), Dc) / total[:, None, None]
    return S, 1.0 + mean ** 2


def _cov_pearson(S: np.ndarray, V: int, ref: np.ndarray) -> np.ndarray:
    var = np.diagonal(S, axis1=1, axis2=2)
    flat = var <= 1e-20 * ref
    with np.errstate(invalid="ignore", divide="ignore"):
        r = S[:, :V, V:] / np.sqrt(var[:, :V, None] * var[:, None, V:])
    return np.where(flat[:, :V, None] | flat[:, None, V:], np.nan, np.clip(r, -1.0, 1.0))


def _cov_partial(S: np.ndarray, V: int, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Partial r of each value with each outcome given the other values, from covariances.

    With A = inverse of the values' covariance and u = A s_xy, s = s_yy - s_xy.u (the outcome's
    residual variance given all values), r = u_v / sqrt(s A_vv + u_v^2) (block inverse of the
    joint covariance). Returns r and a mask of resamples whose values are too close to collinear
    for this; the caller recomputes those by explicit residualisation.
    """
    Sxx, Sxy = S[:, :V, :V], S[:, :V, V:]
    var = np.diagonal(S, axis1=1, axis2=2)
    syy = var[:, V:]
    ok = ~np.any(var[:, :V] <= 1e-20 * ref[:, :V], axis=1)
    d = np.sqrt(np.where(ok[:, None], var[:, :V], 1.0))
    eig = np.zeros((S.shape[0], V))
    if ok.any():
        eig[ok] = np.linalg.eigvalsh(Sxx[ok] / (d[ok][:, :, None] * d[ok][:, None, :]))
    ok &= eig[:, 0] > 1e-9 * np.maximum(eig[:, -1], 1e-300)
    r = np.full((S.shape[0], V, S.shape[1] - V), np.nan)
    if ok.any():
        A = np.linalg.inv(Sxx[ok])
        u = np.matmul(A, Sxy[ok])
        s = syy[ok] - np.einsum("bvc,bvc->bc", Sxy[ok], u)
        Avv = np.diagonal(A, axis1=1, axis2=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            rr = u / np.sqrt(s[:, None, :] * Avv[:, :, None] + u ** 2)
        undefined = (s <= 1e-10 * syy[ok]) | (syy[ok] <= 1e-20 * ref[ok][:, V:])
        r[ok] = np.where(undefined[:, None, :], np.nan, np.clip(rr, -1.0, 1.0))
    return r, ~ok


def _batched_partial(Xb: np.ndarray, Yb: np.ndarray) -> np.ndarray:
    """Partial r by explicit residualisation in each resample (the exact fallback for collinear ones)."""
    B, n, V = Xb.shape
    out = np.full((B, V, Yb.shape[2]), np.nan)
    ones = np.ones((B, n, 1))
    for v in range(V):
        Z = np.concatenate([ones, np.delete(Xb, v, axis=2)], axis=2)
        U, rank = _svd_basis(Z)
        W = np.concatenate([Xb[:, :, v:v + 1], Yb], axis=2)
        R = W - np.matmul(U, np.matmul(U.transpose(0, 2, 1), W))
        rx, ry = R[:, :, 0], R[:, :, 1:]
        ssx, ssy = (rx ** 2).sum(1), (ry ** 2).sum(1)
        xc = Xb[:, :, v] - Xb[:, :, v].mean(1, keepdims=True)
        yc = Yb - Yb.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.einsum("bn,bnc->bc", rx, ry) / np.sqrt(ssx[:, None] * ssy)
        xs, ys = (xc ** 2).sum(1), (yc ** 2).sum(1)
        r[(ssx <= 1e-18 * xs) | (xs <= 1e-20 * n * (1 + Xb[:, :, v].mean(1) ** 2))] = np.nan
        r[(ssy <= 1e-18 * ys) | (ys <= 1e-20 * n * (1 + Yb.mean(1) ** 2))] = np.nan
        r[(n - 2 - (rank - 1)) < 1] = np.nan
        out[:, v] = np.clip(r, -1, 1)
    return out


def _weighted_kendall(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """tau-b (B, V, C) from pair weights w_i w_j and the signs of all model pairs."""
    n = X.shape[0]
    pi, qi = np.triu_indices(n, 1)
    SX = np.sign(X[pi] - X[qi]).T.astype(np.float32)          # (V, P)
    SY = np.sign(Y[pi] - Y[qi]).astype(np.float32)            # (P, C)
    out = np.empty((W.shape[0], X.shape[1], Y.shape[1]))
    step = max(1, int(3e7 // max(1, len(pi) * X.shape[1])))
    for s in range(0, W.shape[0], step):
        w = W[s:s + step].astype(np.float32)
        pair = w[:, pi] * w[:, qi]                               # (b, P)
        num = np.matmul((pair[:, None, :] * SX[None]).reshape(-1, len(pi)), SY).reshape(len(w), X.shape[1], -1)
        nx = pair @ np.abs(SX).T                                 # (b, V)
        ny = pair @ np.abs(SY)                                   # (b, C)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s:s + step] = num.astype(float) / np.sqrt(nx.astype(float)[:, :, None] * ny.astype(float)[:, None, :])
    out[~np.isfinite(out)] = np.nan
    return np.clip(out, -1.0, 1.0)


@blas_single_thread
def bootstrap_correlations(X: np.ndarray, Y: np.ndarray, method: str, idx: np.ndarray) -> np.ndarray:
    """Correlations (B, V, C) of each column of X with each column of Y in every resample idx[b].

    Equal, up to rounding, to `correlation_matrix(X[idx[b]], Y[idx[b]], method)` for each b.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    n, V = X.shape
    out = np.empty((idx.shape[0], V, Y.shape[1]))
    D = np.column_stack([X, Y])
    for s in range(0, idx.shape[0], _CHUNK):
        part = idx[s:s + _CHUNK]
        W = resample_weights(part, n)
        if method == "kendall":
            out[s:s + _CHUNK] = _weighted_kendall(X, Y, W)
            continue
        data = _weighted_ranks(D, W) if method in ("spearman", "partial_spearman") else D
        S, ref = _weighted_cov(data, W)
        if method in ("pearson", "spearman"):
            out[s:s + _CHUNK] = _cov_pearson(S, V, ref)
            continue
        r, fallback = _cov_partial(S, V, ref)
        distinct = (W > 0).sum(axis=1)
        fallback &= distinct - 2 - (V - 1) >= 1
        if fallback.any():
            rows = np.flatnonzero(fallback)
            picked = np.take_along_axis(data[rows], part[rows][:, :, None], axis=1) if data.ndim == 3 else D[part[rows]]
            r[rows] = _batched_partial(picked[:, :, :V], picked[:, :, V:])
        # with repeated models a resample has fewer distinct points than rows; a partial
        # correlation with V-1 controls needs at least V+2 distinct models to mean anything
        r[distinct - 2 - (V - 1) < 1] = np.nan
        out[s:s + _CHUNK] = r
    return out


def percentile_ci(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile CI over axis 0 ignoring NaN resamples; also the number of finite resamples."""
    finite = np.isfinite(boot).sum(axis=0)
    alpha = (1.0 - level) / 2.0
    lo = np.full(boot.shape[1:], np.nan)
    hi = np.full(boot.shape[1:], np.nan)
    ok = finite > 0
    if ok.any():
        flat = boot.reshape(boot.shape[0], -1)[:, ok.ravel()]
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo.ravel()[np.flatnonzero(ok)] = np.nanquantile(flat, alpha, axis=0)
            hi.ravel()[np.flatnonzero(ok)] = np.nanquantile(flat, 1.0 - alpha, axis=0)
    return lo, hi, finite


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
            idx = rng_for(seed, "models", *have).integers(0, len(have), size=(n_boot, len(have))) if n_boot and len(have) >= 3 else None
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
                            note = (f"CI from {finite[i, j]} of {n_boot} resamples (in the others a column was "
                                    "constant or the values collinear)") if finite[i, j] else "no bootstrap resample was defined; no CI"
                        rows.append((value, cat, method, r[i, j], p[i, j], cl, ch, len(have), outcome, note))
    out = pd.DataFrame(rows, columns=["value", "category", "method", "r", "p", "ci_low", "ci_high", "n", "outcome", "note"])
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
