"""Prompt-level regressions of the judge labels on the 10 target value scores (statsmodels).

- flagged ~ 10 values + C(category): logistic GLM (binomial, logit link);
- score ~ 10 values + C(category): linear model (OLS) on the 1..5 score, read as a mean harm
  difference per point of value importance (an ordinal model would fit the scale better but
  statsmodels offers no cluster-robust ordinal fit; the linear one is the usual approximation).
Both use every prompt of every model with a profile, and standard errors clustered by model:
a model's prompts share its profile and its quirks, so they are not independent; clustering
keeps the effective n at the number of models. With few models (under ~30 clusters) those
standard errors are unreliable, which the `note` says. Values are on their own scale (1..6),
so a coefficient is the change per point of importance, holding the other values and the
category fixed. q: Benjamini-Hochberg over the 10 value terms of one outcome.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from valueharm.analysis.bootstrap import blas_single_thread
from valueharm.analysis.correlation import benjamini_hochberg
from valueharm.analysis.table import BINARY_OUTCOMES, OUTCOMES, profiled_models
from valueharm.core.values import VALUES

GLM_COLUMNS: tuple[str, ...] = (
    "outcome",
    "estimator",
    "term",
    "estimate",
    "se",
    "z",
    "p",
    "q",
    "ci_low",
    "ci_high",
    "odds_ratio",
    "n_obs",
    "n_clusters",
    "note",
)
ESTIMATORS = {
    "flagged": "logistic_glm_cluster_by_model",
    "harmful": "logistic_glm_cluster_by_model",
    "compliance": "logistic_glm_cluster_by_model",
    "score": "ols_cluster_by_model",
}
FEW_CLUSTERS = 30


def _design(data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    cats = sorted(data["category"].unique().tolist())
    cols = [np.ones(len(data))] + [data[v].to_numpy(dtype=float) for v in VALUES]
    names = ["intercept", *VALUES]
    codes = data["category"].to_numpy()
    for cat in cats[1:]:
        cols.append((codes == cat).astype(float))
        names.append(f"category[{cat}]")
    return np.column_stack(cols), names


def _empty(outcome: str, note: str, n_obs: int, n_clusters: int) -> list[dict]:
    return [
        {
            "outcome": outcome,
            "estimator": ESTIMATORS[outcome],
            "term": term,
            "estimate": np.nan,
            "se": np.nan,
            "z": np.nan,
            "p": np.nan,
            "q": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "odds_ratio": np.nan,
            "n_obs": n_obs,
            "n_clusters": n_clusters,
            "note": note,
        }
        for term in ("intercept", *VALUES)
    ]


@blas_single_thread
def fit_prompt_level(table: pd.DataFrame, outcome: str, level: float = 0.95) -> pd.DataFrame:
    """One prompt-level model (see the module docstring) as rows of GLM_COLUMNS."""
    models = profiled_models(table)
    data = table[table["model"].isin(models) & table[outcome].notna()].sort_values(
        ["model", "prompt_id"], kind="mergesort"
    )
    n_obs, n_clusters = len(data), int(data["model"].nunique())
    if n_clusters < 2:
        return pd.DataFrame(
            _empty(outcome, f"{n_clusters} model(s) with a value profile: nothing to fit", n_obs, n_clusters)
        )
    y = data[outcome].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        return pd.DataFrame(
            _empty(
                outcome, f"{outcome} is constant ({y[0]:g}) on all {n_obs} prompts: nothing to fit", n_obs, n_clusters
            )
        )
    X, names = _design(data)
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        return pd.DataFrame(
            _empty(
                outcome,
                f"the value profiles of the {n_clusters} models are collinear (design rank {rank} < {X.shape[1]} "
                "terms): the 10 value effects cannot be separated; see the partial correlations",
                n_obs,
                n_clusters,
            )
        )
    # the model classes only: `statsmodels.api` imports every submodule (seconds per stage)
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.regression.linear_model import OLS

    groups = pd.factorize(data["model"], sort=True)[0]
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if outcome in BINARY_OUTCOMES:
                fit = GLM(y, X, family=families.Binomial()).fit(cov_type="cluster", cov_kwds={"groups": groups})
            else:
                fit = OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
        except Exception as exc:  # perfect separation, singular matrices
            return pd.DataFrame(
                _empty(
                    outcome,
                    f"fit failed: {exc.__class__.__name__}: {str(exc).splitlines()[0][:160]}",
                    n_obs,
                    n_clusters,
                )
            )
    for w in caught:
        name = w.category.__name__
        if (
            name in ("PerfectSeparationWarning", "ConvergenceWarning", "HessianInversionWarning")
            or "separation" in str(w.message).lower()
        ):
            notes.append(f"{name}: {str(w.message).splitlines()[0][:120]}")
    if n_clusters < FEW_CLUSTERS:
        notes.append(f"only {n_clusters} models (clusters): cluster-robust SEs are unreliable below ~{FEW_CLUSTERS}")
    params, se = np.asarray(fit.params), np.asarray(fit.bse)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = params / se
    p = 2 * sps.norm.sf(np.abs(z))
    crit = sps.norm.ppf(0.5 + level / 2)
    rows = []
    note = "; ".join(dict.fromkeys(notes))
    for i, term in enumerate(names):
        rows.append(
            {
                "outcome": outcome,
                "estimator": ESTIMATORS[outcome],
                "term": term,
                "estimate": params[i],
                "se": se[i],
                "z": z[i],
                "p": p[i],
                "q": np.nan,
                "ci_low": params[i] - crit * se[i],
                "ci_high": params[i] + crit * se[i],
                "odds_ratio": float(np.exp(params[i])) if outcome in BINARY_OUTCOMES else np.nan,
                "n_obs": n_obs,
                "n_clusters": n_clusters,
                "note": note,
            }
        )
    out = pd.DataFrame(rows, columns=list(GLM_COLUMNS))
    is_value = out["term"].isin(VALUES).to_numpy()
    out.loc[is_value, "q"] = benjamini_hochberg(out.loc[is_value, "p"].to_numpy())
    return out


def prompt_level_models(table: pd.DataFrame, outcomes=OUTCOMES, level: float = 0.95) -> pd.DataFrame:
    """glm.csv: the logistic model for flagged and the linear model for score (see module docstring)."""
    parts = [fit_prompt_level(table, o, level) for o in outcomes if table[o].notna().any()]
    if not parts:
        return pd.DataFrame(columns=list(GLM_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(GLM_COLUMNS)]
