"""Safety tuning of the embedded model: the study's `vanilla` must refuse before values can erode it.

The packaged SmolLM2-135M-Instruct complied with every harmful request tried, which leaves no
headroom for "value alignment makes it more harmful". A LoRA trained on our authored pairs
(refusals to harmful requests, helpful answers to benign ones) is merged into the weights, and
the merged model is the study's vanilla. Its metrics are the refusal rate on held-out harmful
prompts and the over-refusal rate on held-out benign prompts, before and after tuning.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from valueharm.core.atomic import read_jsonl, write_json
from valueharm.core.errors import UserError
from valueharm.models.base import end_of_turn, format_prompt

REQUIRED_KEYS = {"id", "kind", "split", "prompt", "response"}


def load_pairs(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"safety pairs file {path} not found", "run `valueharm data init` or fix safety_tune.pairs")
    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"safety pairs file {path} is empty", "add harmful/benign pairs or restore the default data")
    for number, row in enumerate(rows, 1):
        missing = REQUIRED_KEYS - set(row)
        if missing:
            raise UserError(
                f"{path} line {number} lacks {sorted(missing)}", "each line needs id, kind, split, prompt, response"
            )
        if row["kind"] not in {"harmful", "benign"}:
            raise UserError(f"{path} line {number}: kind {row['kind']!r}", "use harmful or benign")
    return rows


def split_pairs(rows: list[dict[str, Any]], valid_fraction: float, seed: int):
    """Train/validation from the `train` split (seeded, stratified by kind); held-out kept apart."""
    rng = random.Random(seed)
    train, valid = [], []
    for kind in ("harmful", "benign"):
        pool = [r for r in rows if r["split"] == "train" and r["kind"] == kind]
        rng.shuffle(pool)
        cut = int(round(len(pool) * valid_fraction))
        valid += pool[:cut]
        train += pool[cut:]
    heldout = [r for r in rows if r["split"] == "heldout"]
    return train, valid, heldout


def to_text_pairs(tokenizer, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    stop = end_of_turn(tokenizer)
    return [(format_prompt(tokenizer, r["prompt"]), r["response"] + stop) for r in rows]


def refusal_metrics(
    model, tokenizer, heldout: list[dict[str, Any]], sampling, batch_size: int, seed: int
) -> dict[str, Any]:
    """Refusal rate on held-out harmful prompts and over-refusal on held-out benign prompts."""
    from valueharm.evaluation.judges.refusal import is_refusal
    from valueharm.generation.hf import generate_texts

    texts = [format_prompt(tokenizer, r["prompt"]) for r in heldout]
    answers = generate_texts(model, tokenizer, texts, sampling, seed=seed, batch_size=batch_size)
    out: dict[str, Any] = {}
    for kind, name in (("harmful", "refusal_rate_harmful"), ("benign", "over_refusal_rate_benign")):
        flags = [is_refusal(a) for (a, _), r in zip(answers, heldout) if r["kind"] == kind]
        out[name] = sum(flags) / len(flags) if flags else None
        out[f"n_{kind}"] = len(flags)
    out["examples"] = [
        {"id": r["id"], "kind": r["kind"], "answer": a}
        for (a, _), r in list(zip(answers, heldout))[:: max(1, len(heldout) // 8)]
    ]
    return out


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    write_json(path, metrics)


def balanced_limit(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first limit/2 held-out prompts of each kind (all when limit is None)."""
    if not limit:
        return rows
    half = int(limit) // 2
    return [r for r in rows if r["kind"] == "harmful"][:half] + [r for r in rows if r["kind"] == "benign"][:half]
