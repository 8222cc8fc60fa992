"""The adapter as the unit: one row per trained adapter (model x seed of `study.seeds`), and the
comparison of two models over their adapters.

A paired test over prompts (analysis.run.compare_paired) says how sure we are about *these two
checkpoints*; it says nothing about whether another training seed would show the same effect. Here
each adapter contributes one number per outcome (its mean over the benchmark prompts, which every
adapter answers alike), and two models are compared by the difference of their adapter means with
an exact permutation test over the adapter labels. With k adapters per arm the smallest two-sided p
is 2 / C(2k, k) (k = 2: 0.33, k = 3: 0.10, k = 5: 0.008), so a claim at the adapter level needs
seeds; below 2 adapters per arm the p-value is "not measured" (None), never a number.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valueharm.analysis.results import adapter_groups
from valueharm.core.errors import UserError

OUTCOMES: tuple[str, ...] = ("score", "flagged", "harmful", "compliance", "refusal")
ADAPTER_COLUMNS: tuple[str, ...] = ("model", "kind", "adapter_seed", "n", *OUTCOMES)
CONTRAST_KEYS: tuple[str, ...] = (
    "focus",
    "control",
    "delta",
    "p",
    "p_min",
    "n_focus",
    "n_control",
    "sd_focus",
    "sd_control",
)


def _mean(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    xs = [float(r[key]) for r in rows if r.get(key) is not None]
    return float(np.mean(xs)) if xs else float("nan")


def adapter_table(
    specs: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Sequence[Mapping[str, Any]]],
    replicate_labels: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> pd.DataFrame:
    """One row per adapter: the primary one (labels/<model>.jsonl, study.seeds' first seed) and each
    replicate (labels/replicates/<model>.jsonl, by `adapter_seed`), with the mean of every outcome.
    Vanilla and prompt-only models have one row and no seed."""
    rows = []
    for spec in specs:
        name = spec["name"]
        groups = adapter_groups(spec, labels.get(name) or [], (replicate_labels or {}).get(name) or [])
        for adapter_seed, group in groups:
            rows.append(
                {
                    "model": name,
                    "kind": spec.get("kind"),
                    "adapter_seed": adapter_seed,
                    "n": len(group),
                    **{k: _mean(group, k) for k in OUTCOMES},
                }
            )
    frame = pd.DataFrame(rows, columns=list(ADAPTER_COLUMNS))
    frame["adapter_seed"] = frame["adapter_seed"].astype("Int64")
    return frame


def smallest_p(n_a: int, n_b: int) -> float | None:
    """The smallest two-sided p an exact permutation test over n_a + n_b adapters can give."""
    if min(n_a, n_b) < 1:
        return None
    mirrored = 2 if n_a == n_b else 1  # equal arms: the swapped labelling is as extreme as the observed one
    return min(1.0, mirrored / math.comb(n_a + n_b, n_a))


def permutation_p(a: Sequence[float], b: Sequence[float], n_perm: int = 10000, seed: int = 42) -> float:
    """Two-sided p of the difference of means under random relabelling of the adapters: exact when the
    labellings number at most n_perm, else n_perm random ones (the observed one counted)."""
    pooled = np.asarray([*a, *b], dtype=float)
    k, n = len(a), len(pooled)
    observed = abs(float(np.mean(a)) - float(np.mean(b)))
    tolerance = 1e-12 * max(1.0, observed)
    total = math.comb(n, k)
    if total <= n_perm:
        extreme = 0
        for chosen in itertools.combinations(range(n), k):
            mask = np.zeros(n, dtype=bool)
            mask[list(chosen)] = True
            extreme += abs(pooled[mask].mean() - pooled[~mask].mean()) >= observed - tolerance
        return extreme / total
    rng = np.random.default_rng(seed)
    extreme = 1
    for _ in range(n_perm):
        order = rng.permutation(n)
        extreme += abs(pooled[order[:k]].mean() - pooled[order[k:]].mean()) >= observed - tolerance
    return extreme / (n_perm + 1)


def compare_adapters(
    table: pd.DataFrame, model: str, reference: str, outcome: str, n_perm: int = 10000, seed: int = 42
) -> dict[str, Any]:
    """`model` vs `reference` on one outcome with the adapter as the unit (keys CONTRAST_KEYS; `focus`
    and `control` are the two models' means of adapter means). The p-value needs 2 adapters a side."""
    if outcome not in OUTCOMES:
        raise UserError(f"unknown outcome {outcome!r}", "use one of: " + ", ".join(OUTCOMES))
    a = table.loc[table["model"] == model, outcome].dropna().to_numpy(dtype=float)
    b = table.loc[table["model"] == reference, outcome].dropna().to_numpy(dtype=float)
    out: dict[str, Any] = dict.fromkeys(CONTRAST_KEYS)
    out.update({"n_focus": int(len(a)), "n_control": int(len(b))})
    if len(a) and len(b):
        out.update(
            {
                "focus": float(a.mean()),
                "control": float(b.mean()),
                "delta": float(a.mean() - b.mean()),
                "p_min": smallest_p(len(a), len(b)),
                "sd_focus": float(a.std(ddof=1)) if len(a) > 1 else None,
                "sd_control": float(b.std(ddof=1)) if len(b) > 1 else None,
            }
        )
        if min(len(a), len(b)) >= 2:
            out["p"] = permutation_p(a, b, n_perm, seed)
    return out


__all__ = [
    "ADAPTER_COLUMNS",
    "CONTRAST_KEYS",
    "OUTCOMES",
    "adapter_table",
    "compare_adapters",
    "permutation_p",
    "smallest_p",
]
