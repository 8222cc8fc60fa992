"""Bootstrap machinery: seeded generators, weighted resamples and all correlations per resample.

A resample of models is a weight vector w (how often each model was drawn). Every statistic
here is written in terms of w, so no resampled data set is materialised: Pearson and partial
correlations come from the weighted covariance matrix of [values, outcomes]; Spearman ranks
from weighted level counts; Kendall's tau-b from sign products over model pairs weighted by
w_i * w_j (a model drawn twice forms a pair tied in both variables, which tau-b leaves out of
numerator and denominators, exactly as on the resampled rows). Each replicate equals, up to
rounding, the point estimate of `stats_corr.correlation_matrix` on the resampled rows (tested).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
import zlib

import numpy as np

__all__ = [
    "bootstrap_correlations",
    "percentile_ci",
    "resample_weights",
    "rng_for",
    "single_threaded_blas",
    "blas_single_thread",
]

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

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return func(*args, **kwargs)

    return wrapper


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator seeded by `seed` and a stable key, so each cell's draws do not depend on the others."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32("\x1f".join(map(str, key)).encode())])


def column_basis(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of the column space of Z (..., n, k) with dropped null directions, and rank."""
    U, s, _ = np.linalg.svd(Z, full_matrices=False)
    keep = s > _RCOND * s[..., :1]
    return U * keep[..., None, :], keep.sum(axis=-1)


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
        counts = W @ onehot  # (B, m)
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
    return S, 1.0 + mean**2


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
            rr = u / np.sqrt(s[:, None, :] * Avv[:, :, None] + u**2)
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
        U, rank = column_basis(Z)
        W = np.concatenate([Xb[:, :, v : v + 1], Yb], axis=2)
        R = W - np.matmul(U, np.matmul(U.transpose(0, 2, 1), W))
        rx, ry = R[:, :, 0], R[:, :, 1:]
        ssx, ssy = (rx**2).sum(1), (ry**2).sum(1)
        xc = Xb[:, :, v] - Xb[:, :, v].mean(1, keepdims=True)
        yc = Yb - Yb.mean(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.einsum("bn,bnc->bc", rx, ry) / np.sqrt(ssx[:, None] * ssy)
        xs, ys = (xc**2).sum(1), (yc**2).sum(1)
        r[(ssx <= 1e-18 * xs) | (xs <= 1e-20 * n * (1 + Xb[:, :, v].mean(1) ** 2))] = np.nan
        r[(ssy <= 1e-18 * ys) | (ys <= 1e-20 * n * (1 + Yb.mean(1) ** 2))] = np.nan
        r[(n - 2 - (rank - 1)) < 1] = np.nan
        out[:, v] = np.clip(r, -1, 1)
    return out


def _weighted_kendall(X: np.ndarray, Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """tau-b (B, V, C) from pair weights w_i w_j and the signs of all model pairs."""
    n = X.shape[0]
    pi, qi = np.triu_indices(n, 1)
    SX = np.sign(X[pi] - X[qi]).T.astype(np.float32)  # (V, P)
    SY = np.sign(Y[pi] - Y[qi]).astype(np.float32)  # (P, C)
    out = np.empty((W.shape[0], X.shape[1], Y.shape[1]))
    step = max(1, int(3e7 // max(1, len(pi) * X.shape[1])))
    for s in range(0, W.shape[0], step):
        w = W[s : s + step].astype(np.float32)
        pair = w[:, pi] * w[:, qi]  # (b, P)
        num = np.matmul((pair[:, None, :] * SX[None]).reshape(-1, len(pi)), SY).reshape(len(w), X.shape[1], -1)
        nx = pair @ np.abs(SX).T  # (b, V)
        ny = pair @ np.abs(SY)  # (b, C)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + step] = num.astype(float) / np.sqrt(nx.astype(float)[:, :, None] * ny.astype(float)[:, None, :])
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
        part = idx[s : s + _CHUNK]
        W = resample_weights(part, n)
        if method == "kendall":
            out[s : s + _CHUNK] = _weighted_kendall(X, Y, W)
            continue
        data = _weighted_ranks(D, W) if method in ("spearman", "partial_spearman") else D
        S, ref = _weighted_cov(data, W)
        if method in ("pearson", "spearman"):
            out[s : s + _CHUNK] = _cov_pearson(S, V, ref)
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
        out[s : s + _CHUNK] = r
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo.ravel()[np.flatnonzero(ok)] = np.nanquantile(flat, alpha, axis=0)
            hi.ravel()[np.flatnonzero(ok)] = np.nanquantile(flat, 1.0 - alpha, axis=0)
    return lo, hi, finite
