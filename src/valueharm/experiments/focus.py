"""The headline of one experiment: the focus value's aligned model against vanilla.

`value` (params.yaml, top level) names a Schwartz value or higher-order group; `dvc exp run -S
value=X` makes X the focus. Everything heavy is shared between experiments through DVC's cache;
only `focus` (and what reads its output) re-runs, and it writes the top-level
`reports/metrics.json` that `dvc metrics show/diff` and `dvc exp show` display.

Which model is the focus (`resolve_focus`), among the study's VIM adapters, in this order:
    1. the adapter whose profile name is the value (`hedonism`);
    2. a "close" profile of that anchor by the profile naming (`hedonism-r01`, lowest rank first);
    3. an adapter whose target's highest-scored values are exactly the value (or the group's
       members), first in study.models order.
Prompt-only (`icl-*`) and control models are never the focus: the headline is about training.
A name that is no value, or a value no adapter stands for, fails at once with the valid choices.

metrics.json is numeric and nested two or three levels (`overall.score.delta`,
`categories.adult_content.flagged.p`, `alignment.nmse`, `hypotheses.supported`), with the same
keys for every value, so that `dvc metrics diff` between two experiments lines up row by row.
The model name, notes and every test detail go to `reports/focus.json`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valueharm.analysis.results import json_safe, records
from valueharm.core.errors import UserError
from valueharm.core.registry import closest
from valueharm.core.values import HIGHER_ORDER, VALUES, members, normalise_key, resolve

NAMES: tuple[str, ...] = VALUES + tuple(HIGHER_ORDER)
_CLOSE = re.compile(r"^(?P<anchor>.+)-r(?P<rank>\d+)$")
PAIRED_KEYS: tuple[str, ...] = ("delta", "ci_low", "ci_high", "p", "q")
OVERALL_KEYS: tuple[str, ...] = ("focus", "vanilla", "delta", "ci_low", "ci_high", "p", "p_permutation", "n_pairs")


def _canonical(name: str | None) -> str | None:
    try:
        return resolve(str(name)) if name else None
    except UserError:
        return None


def _anchor(name: str) -> tuple[str | None, int]:
    """(canonical anchor, rank) by the profile naming: `power` -> (power, 0), `power-r03` -> (power, 3)."""
    m = _CLOSE.match(name)
    if m:
        return _canonical(m["anchor"]), int(m["rank"])
    return _canonical(name), 0


def top_values(target: Mapping[str, float] | None) -> frozenset[str]:
    """The values a target scores highest (ties kept)."""
    if not target:
        return frozenset()
    best = max(float(target[v]) for v in VALUES if v in target)
    return frozenset(v for v in VALUES if v in target and float(target[v]) == best)


def _adapters(models: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [m for m in models if m.get("kind") == "adapter"]


def candidates(value: str, models: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(model name, how it matched) for a canonical value, best first (see module doc)."""
    adapters = _adapters(models)
    ranked = []
    for i, m in enumerate(adapters):
        anchor, rank = _anchor(str(m.get("profile") or m["name"]))
        if anchor == value:
            ranked.append((rank, i, m["name"], "profile name" if rank == 0 else "close profile of the anchor"))
    out = [(name, how) for _, _, name, how in sorted(ranked)]
    want = frozenset(members(value))
    for m in adapters:
        if top_values(m.get("target")) == want and m["name"] not in {n for n, _ in out}:
            out.append((m["name"], "target argmax"))
    return out


def focus_choices(models: Sequence[Mapping[str, Any]]) -> list[str]:
    """The value and group names that have a focus model in `models`."""
    return [v for v in NAMES if candidates(v, models)]


def resolve_focus(value: str, models: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """{"value", "model", "matched_by", "alternatives"}; UserError (one line, valid choices) otherwise.

    Cheap on purpose: the focus stage calls it before it reads any results.
    """
    choices = focus_choices(models)
    shown = ", ".join(choices) if choices else "none (study.models has no value-aligned adapter)"
    try:
        canonical = resolve(str(value))
    except UserError:
        raise UserError(
            f"params `value` {value!r} is not a Schwartz value or higher-order group name", f"choose one of: {shown}"
        ) from None
    found = candidates(canonical, models)
    if not found:
        raise UserError(
            f"params `value` {value!r}: no model in study.models is aligned to {canonical}",
            f"choose one of: {shown}; or add an adapter of a {canonical} profile to study.models",
        )
    return {
        "value": canonical,
        "model": found[0][0],
        "matched_by": found[0][1],
        "alternatives": [name for name, _ in found[1:]],
    }


def check_value_name(value: str, model_names: Sequence[str]) -> str:
    """The same rule as `resolve_focus`, from params alone (no artefacts), for an early guard.

    Fails only where the answer is certain without the models' targets: `value` is no value or
    group name, study.models has no adapter, or no adapter is named for the value while every
    adapter is an extreme anchor (rank 0, whose target's argmax is its own anchor). A close or
    custom profile might still match by target argmax, so with one of those the focus stage decides.
    """
    adapters = [n for n in model_names if n != "vanilla" and not n.startswith(("icl-", "control-"))]
    anchors = [_anchor(n) for n in adapters]
    named = [a for a, _ in anchors if a]
    choices = ", ".join(v for v in NAMES if v in named) or ", ".join(NAMES)
    try:
        canonical = resolve(str(value))
    except UserError:
        guess = closest(normalise_key(str(value)), NAMES)
        hint = f"did you mean {guess}? " if guess else ""
        raise UserError(
            f"params `value` {value!r} is not a Schwartz value or higher-order group name",
            f"{hint}choose one of: {choices}",
        ) from None
    if not adapters:
        raise UserError(
            "study.models has no value-aligned adapter to focus on", "add a profile (e.g. hedonism) to study.models"
        )
    if canonical not in named and all(a is not None and rank == 0 for a, rank in anchors):
        raise UserError(
            f"params `value` {value!r}: no model in study.models is aligned to {canonical}",
            f"choose one of: {choices}; or add an adapter of a {canonical} profile to study.models",
        )
    return canonical


# --------------------------------------------------------------------------------------------
# Metrics


def _round(x: Any) -> Any:
    """6 significant digits, so that `dvc metrics diff` shows numbers, not float noise."""
    return float(f"{float(x):.6g}") if isinstance(x, (float, np.floating)) and np.isfinite(x) else x


def _pick(row: Mapping[str, Any] | pd.Series, keys: Sequence[str]) -> dict[str, Any]:
    names = {"focus": "mean_model", "vanilla": "mean_reference"}
    return {key: _round(row[names.get(key, key)]) for key in keys}


def focus_hypotheses(hypotheses: pd.DataFrame | None, value: str) -> pd.DataFrame | None:
    """The registry rows about the focus value (a group: about its members)."""
    if hypotheses is None:
        return None
    return hypotheses[hypotheses["value"].isin(members(value))].reset_index(drop=True)


def focus_metrics(
    paired: pd.DataFrame, alignment: Mapping[str, Any] | None, hypotheses: pd.DataFrame | None
) -> dict[str, Any]:
    """The numeric metrics.json from the focus-vs-vanilla table (stats.PAIRED_COLUMNS), the focus
    model's align_check alignment block and its hypotheses rows (already filtered)."""
    metrics: dict[str, Any] = {"overall": {}, "categories": {}}
    for _, row in paired.iterrows():
        if row["category"] == "overall":
            metrics["overall"][row["outcome"]] = _pick(row, OVERALL_KEYS)
        else:
            metrics["categories"].setdefault(row["category"], {})[row["outcome"]] = _pick(row, PAIRED_KEYS)
    alignment = alignment or {}
    metrics["alignment"] = {
        "nmse": _round(alignment.get("nmse")),
        "spearman": _round(alignment.get("spearman")),
        "n_values": alignment.get("n_values"),
    }
    if hypotheses is not None:
        status = hypotheses["status"].value_counts()
        metrics["hypotheses"] = {
            "rows": int(len(hypotheses)),
            **{s: int(status.get(s, 0)) for s in ("supported", "contradicted", "inconclusive")},
        }
    return json_safe(metrics)


def focus_report(
    focus: Mapping[str, Any],
    model: Mapping[str, Any],
    paired: pd.DataFrame,
    align: Mapping[str, Any] | None,
    hypotheses: pd.DataFrame | None,
) -> dict[str, Any]:
    """reports/focus.json: who the focus is and every detail behind metrics.json."""
    align = align or {}
    return json_safe(
        {
            **focus,
            "reference": "vanilla",
            "kind": model.get("kind"),
            "profile": model.get("profile"),
            "target": model.get("target"),
            "adapter_sha256": model.get("adapter_sha256"),
            "system_prompt_sha256": model.get("system_prompt_sha256"),
            "alignment": {
                **(align.get("alignment") or {}),
                "n_items": align.get("n_items"),
                "n_parsed": align.get("n_parsed"),
                "answered_profile": align.get("profile"),
            },
            "paired": records(paired),
            "hypotheses": records(hypotheses) if hypotheses is not None else None,
            "tests": "score: Wilcoxon signed-rank; flagged: exact McNemar; CI: percentile bootstrap over prompts; "
            "q: Benjamini-Hochberg over the categories and overall of one outcome",
        }
    )
