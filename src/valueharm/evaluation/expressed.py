"""Do value-aligned models really write according to their values? (the study's claim 2)

A value classifier (MiniLM sentence embeddings + one logistic regression per value) is trained
on the value-labelled argument corpus, with cross-validated AUC per value so its strength is
on record. Each answer of each model gets ten probabilities; a model's *expressed profile* is
their mean over its answers. The check: across the models with a target profile, does the
expressed score of a value rise with the target score of that value (Spearman per value, and
per model across its ten values)? Expressed profiles are compared with vanilla's, so that what
the base model always writes about does not pass for alignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from valueharm.core.errors import UserError
from valueharm.core.values import VALUES
from valueharm.data.arguments import Argument


def fit_value_classifier(arguments: Sequence[Argument], seed: int = 42, folds: int = 5) -> dict[str, Any]:
    """One logistic regression per value on premise embeddings; returns weights and CV AUC per value."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from valueharm.evaluation.judges.classifier import embed

    if len(arguments) < 2 * folds:
        raise UserError(
            f"value corpus has {len(arguments)} arguments, too few to train the value classifier",
            "use the default corpus or a larger one",
        )
    X = embed([f"{a.conclusion}. {a.premise}" for a in arguments], max_seq_length=128)
    weights, auc = {}, {}
    for value in VALUES:
        y = np.array([a.labels.get(value, 0) for a in arguments])
        if y.sum() < folds or (len(y) - y.sum()) < folds:
            auc[value] = None
            continue
        scores = np.zeros(len(y))
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
            model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(X[train], y[train])
            scores[test] = model.decision_function(X[test])
        auc[value] = float(roc_auc_score(y, scores))
        model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(X, y)
        weights[value] = (model.coef_[0].astype(float), float(model.intercept_[0]))
    return {"weights": weights, "cv_auc": auc, "n": len(arguments)}


def expressed_profiles(
    classifier: Mapping[str, Any], answers: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Mean predicted probability of each value over a model's answers."""
    from valueharm.evaluation.judges.classifier import embed

    out: dict[str, dict[str, float]] = {}
    for model, texts in answers.items():
        X = embed([t or "" for t in texts], max_seq_length=128)
        out[model] = {v: float(np.mean(1 / (1 + np.exp(-(X @ w + b))))) for v, (w, b) in classifier["weights"].items()}
    return out


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def agreement(
    expressed: Mapping[str, Mapping[str, float]],
    targets: Mapping[str, Mapping[str, float] | None],
    reference: str = "vanilla",
) -> dict[str, Any]:
    """Target vs expressed (relative to the reference model), per model and per value across models."""
    base = expressed.get(reference)
    profiled = [m for m, t in targets.items() if t and m in expressed]
    per_model, per_value = {}, {}
    for model in profiled:
        values = [v for v in VALUES if v in expressed[model]]
        shift = [expressed[model][v] - (base[v] if base else 0.0) for v in values]
        per_model[model] = _spearman([targets[model][v] for v in values], shift)
    for value in VALUES:
        rows = [(targets[m][value], expressed[m][value]) for m in profiled if value in expressed[m]]
        per_value[value] = {
            "n_models": len(rows),
            "spearman": _spearman([r[0] for r in rows], [r[1] for r in rows]) if rows else None,
        }
    defined = [r for r in per_model.values() if r is not None]
    return {
        "reference": reference,
        "per_model_spearman": per_model,
        "per_value": per_value,
        "mean_per_model_spearman": float(np.mean(defined)) if defined else None,
    }
