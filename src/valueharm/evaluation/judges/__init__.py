"""Judges: every answer gets a harm score 1..5, flagged 0/1 and refusal 0/1.

Registered judges (`get_judge(name, **cfg)`):
    refusal     the refusal phrase rule (judges/refusal.py)
    classifier  MiniLM embeddings + logistic regression trained on PyRIT's human labels (default)
    rubric      an LLM judge on any OpenAI-compatible chat endpoint, 1..5 rubric or flagged/unflagged
    llamaguard  Llama Guard through transformers, when its weights are on disk

One entry point, `judge_rows(rows, judge_name, cfg, cache_dir)`, takes the generate stage's rows
and returns one output row per input row, in order:

    {"model", "prompt_id", "benchmark", "category", "score", "flagged", "refusal",
     "judge", "judge_version", "judge_config", "parse_error", ...judge-specific fields}

`score` and `flagged` are None only when a judge's answer could not be parsed (`parse_error`
then says why and the raw answer is kept); they are never guessed. `refusal` always comes from
the refusal rule. Calls go through the content-hash cache (judges/cache.py), and identical
(prompt, response) pairs within one call are judged once.

A new judge is one class: subclass `Judge`, set `name`, `version` and `options`, implement
`judge_batch`, and decorate it with `@register_judge("name")`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from valueharm.core.errors import UserError
from valueharm.evaluation.judges.cache import JudgeCache, cache_key, content_hash, default_cache_dir

OUTPUT_FIELDS: tuple[str, ...] = (
    "model",
    "prompt_id",
    "benchmark",
    "category",
    "score",
    "flagged",
    "refusal",
    "judge",
    "judge_version",
    "judge_config",
    "parse_error",
)
PASS_THROUGH: tuple[str, ...] = ("model", "prompt_id", "benchmark", "category")
REQUIRED_INPUT: tuple[str, ...] = ("model", "prompt_id", "prompt", "response")


class Judge:
    """Base class. Heavy resources (models, HTTP sessions) load lazily inside `judge_batch`, so a
    run served entirely from the cache loads nothing."""

    name: str = ""
    version: str = ""
    options: dict[str, Any] = {}  # accepted config keys and their defaults

    def __init__(self, **cfg: Any) -> None:
        unknown = sorted(set(cfg) - set(self.options))
        if unknown:
            raise UserError(
                f"judge {self.name}: unknown option(s) {', '.join(unknown)}",
                "valid options: " + (", ".join(sorted(self.options)) or "none"),
            )
        self.cfg = {**self.options, **cfg}

    def identity(self) -> dict[str, Any]:
        """Everything besides name and version that changes this judge's answers (no secrets)."""
        return {}

    def item_identity(self, item: dict[str, Any]) -> dict[str, Any]:
        """Per-item settings that change the answer (part of the cache key)."""
        return {}

    def config_hash(self) -> str:
        return content_hash({"judge": self.name, "version": self.version, "identity": self.identity()})

    def judge_batch(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """items: {"prompt", "response", "benchmark", "category"}; returns per item at least
        score (1..5 or None), flagged (0/1 or None), refusal (0/1), optionally parse_error."""
        raise NotImplementedError


JUDGES: dict[str, type[Judge]] = {}


def register_judge(name: str) -> Callable[[type[Judge]], type[Judge]]:
    def wrap(cls: type[Judge]) -> type[Judge]:
        cls.name = name
        JUDGES[name] = cls
        return cls

    return wrap


def get_judge(name: str, **cfg: Any) -> Judge:
    if name not in JUDGES:
        raise UserError(f"unknown judge {name!r}", "valid judges: " + ", ".join(sorted(JUDGES)))
    return JUDGES[name](**cfg)


def _validate_rows(rows: list[dict[str, Any]]) -> None:
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"judge input row {index} is not an object", "give the generate stage's JSONL rows")
        missing = [k for k in REQUIRED_INPUT if k not in row]
        if missing:
            raise UserError(
                f"judge input row {index} (prompt_id {row.get('prompt_id')!r}) lacks {', '.join(missing)}",
                "give the generate stage's JSONL rows",
            )
        if row["response"] is not None and not isinstance(row["response"], str):
            raise UserError(
                f"judge input row {index}: response must be text, got {type(row['response']).__name__}",
                "fix the generations file",
            )


def _check_result(judge: Judge, result: dict[str, Any]) -> dict[str, Any]:
    score, flagged, refused = result.get("score"), result.get("flagged"), result.get("refusal")
    if score is not None and (isinstance(score, bool) or score not in (1, 2, 3, 4, 5)):
        raise RuntimeError(f"judge {judge.name} returned score {score!r}")  # a bug in the judge, not user input
    if flagged not in (0, 1, None) or refused not in (0, 1):
        raise RuntimeError(f"judge {judge.name} returned flagged={flagged!r} refusal={refused!r}")
    result.setdefault("parse_error", None)
    return result


def judge_rows(
    rows: Iterable[dict[str, Any]],
    judge_name: str,
    cfg: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    stats: dict[str, Any] | None = None,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Judge every row; cached judgements are reused without any work.

    `stats`, when given, is filled with n, unique, cache_hits, judged and parse_failures.
    """
    rows = list(rows)
    _validate_rows(rows)
    judge = get_judge(judge_name, **(cfg or {}))
    config_hash = judge.config_hash()
    cache = JudgeCache(cache_dir) if cache_dir is not None else None

    items = [
        {
            "prompt": str(r["prompt"]),
            "response": r["response"] or "",
            "benchmark": r.get("benchmark"),
            "category": r.get("category"),
        }
        for r in rows
    ]
    keys = [cache_key(config_hash, it["prompt"], it["response"], judge.item_identity(it)) for it in items]
    results: dict[str, dict[str, Any]] = {}
    todo: list[str] = []
    todo_items: dict[str, dict[str, Any]] = {}
    hits = 0
    for key, item in zip(keys, items):
        if key in results or key in todo_items:
            continue
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            results[key] = cached
            hits += 1
        else:
            todo.append(key)
            todo_items[key] = item
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        answers = judge.judge_batch([todo_items[k] for k in chunk])
        if len(answers) != len(chunk):
            raise RuntimeError(f"judge {judge.name} returned {len(answers)} results for {len(chunk)} items")
        for key, answer in zip(chunk, answers):
            answer = _check_result(judge, dict(answer))
            results[key] = answer
            if cache is not None and answer["parse_error"] is None:
                cache.put(key, answer)

    out = []
    for row, key in zip(rows, keys):
        record = {k: row.get(k) for k in PASS_THROUGH}
        record.update(results[key])
        record.update({"judge": judge.name, "judge_version": judge.version, "judge_config": config_hash[:16]})
        out.append(record)
    if stats is not None:
        stats.update(
            {
                "n": len(rows),
                "unique": len(results),
                "cache_hits": hits,
                "judged": len(todo),
                "parse_failures": sum(1 for r in out if r["parse_error"] is not None),
            }
        )
    return out


def summarize(judged: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts for a stage's report: rows, parse failures (with their prompt ids), judge ids."""
    failures = [r.get("prompt_id") for r in judged if r.get("parse_error") is not None]
    return {
        "n": len(judged),
        "parse_failures": len(failures),
        "parse_failure_ids": failures,
        "judges": sorted({f"{r.get('judge')}@{r.get('judge_version')}" for r in judged}),
    }


# Register the built-in judges (their heavy imports are lazy).
from valueharm.evaluation.judges import classifier, llamaguard, refusal, rubric  # noqa: E402,F401

__all__ = [
    "JUDGES",
    "Judge",
    "JudgeCache",
    "OUTPUT_FIELDS",
    "default_cache_dir",
    "get_judge",
    "judge_rows",
    "register_judge",
    "summarize",
]
