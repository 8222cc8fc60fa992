"""Simulated results tables in the contract-2 format, with planted value -> category effects.

For tests, benchmarks and for checking that an analysis finds what was put in. Profiles follow
the study's design: 14 extreme anchors (one value, or one higher-order group's members, at 6 and
the rest at 1) and "close" profiles scattered around them. A model's latent harm in a category is
a category baseline plus, for each planted (value, category, beta), beta times the value's
z-score across models, plus a model effect; each prompt's 1..5 score rounds that plus prompt
noise, and `flagged` is a Bernoulli draw whose log-odds follow the same latent harm.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from valueharm.core.categories import HARM_CATEGORIES as HEX_PHI_CATEGORIES
from valueharm.core.values import HIGHER_ORDER, VALUES


def anchor_profiles() -> dict[str, np.ndarray]:
    """The 14 extreme profiles: 10 single values and 4 higher-order groups at 6, the rest at 1."""
    anchors = {}
    for v in VALUES:
        anchors[v] = np.where(np.array(VALUES) == v, 6.0, 1.0)
    for group, members in HIGHER_ORDER.items():
        anchors[group] = np.where(np.isin(VALUES, members), 6.0, 1.0)
    return anchors


def simulate_profiles(n_models: int, seed: int = 0, spread: float = 1.2) -> pd.DataFrame:
    """n_models profiles (rows, named like the study's models), the 14 anchors first."""
    rng = np.random.default_rng(seed)
    anchors = anchor_profiles()
    names, rows = [], []
    for i in range(n_models):
        name = list(anchors)[i % len(anchors)]
        base = anchors[name]
        if i < len(anchors):
            names.append(f"{name}-extreme")
            rows.append(base)
        else:
            names.append(f"{name}-close{i // len(anchors):02d}")
            rows.append(np.clip(np.round((base + rng.normal(0, spread, len(VALUES))) * 2) / 2, 1, 6))
    return pd.DataFrame(rows, index=names, columns=list(VALUES))


def simulate_results(
    n_models: int = 30,
    n_prompts: int = 110,
    effects: Mapping[tuple[str, str], float] | None = None,
    categories: tuple[str, ...] = HEX_PHI_CATEGORIES,
    seed: int = 0,
    reference_models: tuple[str, ...] = ("vanilla",),
    model_noise: float = 0.15,
    prompt_noise: float = 0.8,
) -> pd.DataFrame:
    """A long results table: n_models profiled models plus `reference_models` (no profile).

    `effects` maps (value, category) to beta, the change in latent harm (score points) per
    standard deviation of the value across models.
    """
    rng = np.random.default_rng([seed, 7])
    effects = dict(effects or {})
    profiles = simulate_profiles(n_models, seed)
    z = (profiles - profiles.mean()) / profiles.std(ddof=0).replace(0, 1)
    cat_of_prompt = np.array([categories[i % len(categories)] for i in range(n_prompts)])
    prompt_ids = np.array([f"{c}-{i:04d}" for i, c in enumerate(cat_of_prompt)])
    cat_index = {c: j for j, c in enumerate(categories)}
    base = 1.6 + 0.8 * rng.random(len(categories))
    prompt_effect = rng.normal(0, 0.4, n_prompts)
    all_models = list(profiles.index) + list(reference_models)
    latent_cat = np.tile(base, (len(all_models), 1))
    for (value, category), beta in effects.items():
        latent_cat[:n_models, cat_index[category]] += beta * z[value].to_numpy()
    latent_cat += rng.normal(0, model_noise, (len(all_models), 1))
    cj = np.array([cat_index[c] for c in cat_of_prompt])
    latent = latent_cat[:, cj] + prompt_effect[None, :]  # (models, prompts)
    score = np.clip(np.rint(latent + rng.normal(0, prompt_noise, latent.shape)), 1, 5)
    flagged = (rng.random(latent.shape) < 1 / (1 + np.exp(-(latent - 2.5) * 1.5))).astype(int)
    n_all = len(all_models)
    frame = pd.DataFrame(
        {
            "model": np.repeat(all_models, n_prompts),
            "prompt_id": np.tile(prompt_ids, n_all),
            "category": np.tile(cat_of_prompt, n_all),
            "score": score.ravel().astype(int),
            "flagged": flagged.ravel(),
        }
    )
    values = np.vstack([profiles.to_numpy(), np.full((len(reference_models), len(VALUES)), np.nan)])
    for j, v in enumerate(VALUES):
        frame[v] = np.repeat(values[:, j], n_prompts)
    return frame
