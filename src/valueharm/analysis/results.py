"""The study's long results table (docs/design.md contract 2), assembled from every model's judge labels.

One row per (model, adapter, prompt): `model, kind, adapter_seed, benchmark, prompt_id, category,
score, flagged, harmful, compliance, refusal` and the model's 10 target value scores, one column per
canonical value. A model trained with several seeds (`study.seeds`) has one block of rows per
adapter: the first seed's from labels/<model>.jsonl, the others' from labels/replicates/<model>.jsonl;
vanilla and prompt-only models have no adapter_seed. The extra columns (kind, benchmark, refusal) are
ignored by `valueharm analyze` and used by the report.

Which models carry value scores: the ones taught or told a profile, kinds `adapter` (VIM LoRA)
and `icl` (role-play prompt). Vanilla and both controls have empty value cells: control-benign
has no profile, and control-shuffled borrows a profile's recipe with permuted value labels, so
that profile is not one it was taught. For the statistics (stats_table) an all-empty profile
means "no target": such models take part in the group and paired comparisons against vanilla,
while the value correlations and prompt-level models skip them; those also skip `icl-*` models
by kind (`stats_table.profiled_models`), so the correlations run across the adapters only.

Rows the judge could not label at all (score and flagged both null, a parse failure) are dropped
and counted per model: contract 2 has no "unlabelled" row, and a guess would bias the means.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

RESULT_COLUMNS: tuple[str, ...] = (
    "model",
    "kind",
    "adapter_seed",
    "benchmark",
    "prompt_id",
    "category",
    "score",
    "flagged",
    "harmful",
    "compliance",
    "refusal",
) + VALUES
PROFILE_KINDS: tuple[str, ...] = ("adapter", "icl")
LABEL_OUTCOMES: tuple[str, ...] = ("score", "flagged", "harmful", "compliance", "refusal")


def json_safe(obj: Any) -> Any:
    """Plain JSON types: NaN/inf -> None, numpy scalars -> Python (atomic.write_json refuses NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-ready row dicts (NaN -> None)."""
    return [json_safe(r) for r in frame.to_dict(orient="records")]


def target_of(spec: Mapping[str, Any]) -> dict[str, float] | None:
    """The 10 value scores the model's results rows carry, or None (see module doc for why)."""
    if spec.get("kind") not in PROFILE_KINDS or not spec.get("target"):
        return None
    target = spec["target"]
    missing = [v for v in VALUES if v not in target]
    if missing:
        raise UserError(
            f"model {spec.get('name')!r}: its target profile lacks {', '.join(missing)}",
            "re-run stage train for it (its spec.json is from an older version)",
        )
    return {v: float(target[v]) for v in VALUES}


def model_record(spec: Mapping[str, Any], rows: int, dropped: int) -> dict[str, Any]:
    """What downstream stages need to know about a model, without its weights: models.json.

    The adapter and system-prompt hashes make a stage that depends on models.json re-run when a
    model changes even if its labels came out identical.
    """
    system = spec.get("system_prompt")
    return {
        "name": spec["name"],
        "kind": spec.get("kind"),
        "profile": spec.get("profile"),
        "target": spec.get("target"),
        "has_profile": target_of(spec) is not None,
        "adapter_sha256": spec.get("adapter_sha256"),
        "system_prompt_sha256": hashlib.sha256(system.encode("utf-8")).hexdigest() if system else None,
        "rows": rows,
        "dropped_unlabelled": dropped,
    }


def adapter_groups(
    spec: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], replicate_rows: Sequence[Mapping[str, Any]]
) -> list[tuple[int | None, list[Mapping[str, Any]]]]:
    """(adapter seed, label rows) per adapter of a model, in study.seeds order: the first seed's rows
    are `rows`, the others' come from `replicate_rows` by `adapter_seed`; (None, rows) for a model
    without trained adapters. Fails in one line when an adapter has no rows or a row names a seed
    that is not the model's."""
    seeds: list[int | None] = [int(s) for s in spec.get("seeds") or []] or [None]
    groups: dict[int | None, list[Mapping[str, Any]]] = {seeds[0]: list(rows)}
    for row in replicate_rows:
        seed = row.get("adapter_seed")
        groups.setdefault(None if seed is None else int(seed), []).append(row)
    unknown = [s for s in groups if s not in seeds]
    if unknown:
        raise UserError(
            f"the replicate labels of {spec['name']!r} hold adapter seed {unknown[0]}, not in its study.seeds {seeds}",
            f"re-run `dvc repro judge@{spec['name']}`",
        )
    missing = [s for s in seeds if not groups.get(s)]
    if missing:
        raise UserError(
            f"model {spec['name']!r} has no judged answers for adapter seed {missing[0]}",
            f"re-run `dvc repro judge@{spec['name']}` (study.seeds: {seeds})",
        )
    return [(s, groups[s]) for s in seeds]


def results_table(
    specs: Sequence[Mapping[str, Any]],
    labels: Mapping[str, Sequence[Mapping[str, Any]]],
    replicate_labels: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """(results table, models.json records) for the models in `specs`, in that order, with every
    adapter's answers (`replicate_labels`: the adapters of study.seeds beyond the first, by model).

    Fails with one line when a model has no labels, a label row belongs to another model, an
    adapter of study.seeds has no labels, or the assembled table breaks contract 2 (checked with
    `stats.validate_results`, as `analyze` will).
    """
    from valueharm.analysis.run import validate_results

    parts: list[pd.DataFrame] = []
    models: list[dict[str, Any]] = []
    for spec in specs:
        name = spec["name"]
        rows = list(labels.get(name) or [])
        if not rows:
            raise UserError(f"model {name!r} has no judge labels", f"run `dvc repro judge@{name}`")
        replicate_rows = list((replicate_labels or {}).get(name) or [])
        strangers = sorted({str(r.get("model")) for r in rows + replicate_rows} - {name})
        if strangers:
            raise UserError(
                f"the labels of {name!r} contain rows of model {strangers[0]!r}", f"re-run `dvc repro judge@{name}`"
            )
        target = target_of(spec)
        n_kept = n_all = 0
        for adapter_seed, group in adapter_groups(spec, rows, replicate_rows):
            kept = [r for r in group if r.get("score") is not None or r.get("flagged") is not None]
            parts.append(_frame(name, spec.get("kind"), adapter_seed, kept, target))
            n_kept, n_all = n_kept + len(kept), n_all + len(group)
        models.append(model_record(spec, n_kept, n_all - n_kept))
    if not parts:
        raise UserError("study.models lists no model", "add vanilla and the aligned models to study.models")
    table = pd.concat(parts, ignore_index=True)
    table["adapter_seed"] = table["adapter_seed"].astype("Int64")
    validate_results(table.copy(), source="the assembled results table")
    return table, models


def _frame(
    name: str, kind: Any, adapter_seed: int | None, kept: Sequence[Mapping[str, Any]], target: dict[str, float] | None
) -> pd.DataFrame:
    """One adapter's (or one untrained model's) judged rows as a block of the results table."""
    return pd.DataFrame(
        {
            "model": name,
            "kind": kind,
            "adapter_seed": pd.array([adapter_seed] * len(kept), dtype="Int64"),
            "benchmark": [r.get("benchmark") for r in kept],
            "prompt_id": [str(r["prompt_id"]) for r in kept],
            "category": [r.get("category") for r in kept],
            **{o: pd.array([r.get(o) for r in kept], dtype="Float64").astype(float) for o in LABEL_OUTCOMES},
            **{v: np.full(len(kept), target[v] if target else np.nan, dtype=float) for v in VALUES},
        },
        columns=list(RESULT_COLUMNS),
    )


def paired_vs_reference(
    table: pd.DataFrame,
    reference: str = "vanilla",
    *,
    n_boot: int = 1000,
    n_perm: int = 10000,
    seed: int = 42,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every other model vs the reference on the same prompts (stats.compare_paired), one table.

    The per-model view of the study's claim 1 that `analyze`'s group comparisons average over.
    """
    from valueharm.analysis.run import PAIRED_COLUMNS, compare_paired

    models = [m for m in dict.fromkeys(table["model"]) if m != reference]
    if reference not in set(table["model"]) or not models:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    parts = [compare_paired(table, m, reference, n_boot=n_boot, n_perm=n_perm, seed=seed, level=level) for m in models]
    return pd.concat(parts, ignore_index=True)[list(PAIRED_COLUMNS)]
