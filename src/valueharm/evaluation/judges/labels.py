"""The labelled validation set of the project's own generations (corpora/judge_labels.jsonl).

Format (the contract with whoever labels): the first line is `{"_meta": {...}}` (how the labels
were made), then one JSON object per line with at least
    id, request, response, refusal (0/1), compliance (0/1), harmful (0/1),
    split ("train" | "heldout", split by request), source_model, benchmark, category.
Labels follow corpora/judge_rubric.yaml; what they mean is judges/__init__.py's OUTCOMES.

`load_labels` checks every row before anything heavy runs; a bad row is one UserError line that
names the file, the line and the row's id: an unknown label (not 0/1; true/false are read), an
unknown split, a harmful answer not marked compliant, a missing or empty request, a missing response (an empty string is a valid, empty
answer), a duplicate id, or one request in both splits (the held-out part would leak).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from valueharm.core.atomic import iter_jsonl
from valueharm.core.errors import UserError

LABELS: tuple[str, ...] = ("refusal", "compliance", "harmful")
SPLITS: tuple[str, ...] = ("train", "heldout")
REQUIRED: tuple[str, ...] = ("id", "request", "response", *LABELS, "split")
PACKAGED = "judge_labels.jsonl"


def packaged_labels_path() -> Path:
    """Where the packaged labelled set lives (it may not exist yet in a fresh checkout)."""
    return Path(str(resources.files("valueharm") / "corpora" / PACKAGED))


def _label(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return int(value.strip().lower() in ("1", "true"))
    return None


def load_labels(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(meta, rows) of a labelled file; labels as ints 0/1; see the module doc for the rules."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"labelled judge set {path} not found", "set judge_validation.labels to the labelled JSONL file"
        )
    meta: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    split_of: dict[str, tuple[str, int]] = {}
    for number, obj in iter_jsonl(path):
        if "_meta" in obj:
            if rows or meta:
                raise UserError(f"{path}: line {number}: a second `_meta` header", "keep one header, on the first line")
            meta = obj["_meta"] if isinstance(obj["_meta"], dict) else {"note": obj["_meta"]}
            continue
        where = f"{path}: line {number} (id {obj.get('id')!r})"
        missing = [k for k in REQUIRED if k not in obj or obj[k] is None]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}", "every labelled pair needs " + ", ".join(REQUIRED))
        if not isinstance(obj["request"], str) or not obj["request"].strip():
            raise UserError(f"{where}: empty request", "every labelled pair needs the request text")
        if not isinstance(obj["response"], str):
            raise UserError(f"{where}: response is not text", "write the answer as a string (empty string for none)")
        row = dict(obj)
        for key in LABELS:
            value = _label(obj[key])
            if value is None:
                raise UserError(f"{where}: unknown {key} label {obj[key]!r}", "labels are 0 or 1")
            row[key] = value
        if row["harmful"] and not row["compliance"]:
            raise UserError(
                f"{where}: is harmful but not compliant", "a harmful answer attempts the request: set compliance 1"
            )
        if obj["split"] not in SPLITS:
            raise UserError(f"{where}: unknown split {obj['split']!r}", "split is train or heldout")
        key = str(obj["id"])
        if key in seen:
            raise UserError(f"{where}: id already used on line {seen[key]}", "give every pair its own id")
        seen[key] = number
        request = obj["request"].strip()
        other = split_of.setdefault(request, (obj["split"], number))
        if other[0] != obj["split"]:
            raise UserError(
                f"{where}: its request is in split {other[0]!r} on line {other[1]} and in {obj['split']!r} here",
                "split by request: all answers to one request go to the same split",
            )
        rows.append(row)
    if not rows:
        raise UserError(f"labelled judge set {path} has no rows", "add labelled (request, response) pairs")
    return meta, rows


def split_rows(rows: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["split"] == split]
