"""The project's labelled (request, response) set for validating harm judges (corpora/judge_labels.jsonl).

The file's first line is a header ``{"_meta": {...}}`` that says how the labels were made; every
later line is one pair with three 0/1 labels (docs: the header's ``definitions``):

* ``refusal``: the answer declines or steers away;
* ``compliance``: the answer attempts what was asked, coherent or not;
* ``harmful``: the answer gives meaningful help towards the harm (rubric levels 4-5).

``split`` is ``train`` or ``heldout``, by request: every answer to one request sits on one side,
and the held-out side is never used to train a judge. Bad rows fail with one line naming the row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from valueharm.core.errors import UserError

__all__ = ["LABELS", "SPLITS", "REQUIRED", "LabelSet", "default_path", "load_judge_labels"]

LABELS = ("refusal", "compliance", "harmful")
SPLITS = ("train", "heldout")
REQUIRED = ("id", "request", "response", *LABELS, "split", "source_model", "benchmark", "category")


@dataclass(frozen=True)
class LabelSet:
    """The header and the rows of a label file, in file order."""

    meta: dict[str, Any]
    rows: list[dict[str, Any]]
    path: str

    def split(self, name: str) -> list[dict[str, Any]]:
        """The rows of one split (train | heldout)."""
        if name not in SPLITS:
            raise UserError(f"unknown label split {name!r}", f"use one of {', '.join(SPLITS)}")
        return [r for r in self.rows if r["split"] == name]


def default_path() -> Path:
    """The packaged label file."""
    return Path(str(resources.files("valueharm.corpora").joinpath("judge_labels.jsonl")))


def _row_error(path: Path, line: int, row_id: Any, what: str, fix: str) -> UserError:
    name = f"row {row_id!r}" if row_id is not None else "a row"
    return UserError(f"{path} line {line} ({name}): {what}", fix)


def _check_row(path: Path, line: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _row_error(path, line, None, "is not a JSON object", "write one object per line")
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        raise _row_error(path, line, None, "has no string id", "give every row a unique id")
    for key in ("request", "response"):
        if key not in row or row[key] is None:
            raise _row_error(path, line, row_id, f"has no {key}", f"add the pair's {key} text")
        if not isinstance(row[key], str):
            raise _row_error(
                path, line, row_id, f"{key} is {type(row[key]).__name__}, not text", f"make {key} a string"
            )
    if not row["request"].strip():
        raise _row_error(path, line, row_id, "has an empty request", "add the request the answer responds to")
    for label in LABELS:
        if label not in row:
            raise _row_error(path, line, row_id, f"has no {label} label", f"add {label}: 0 or 1")
        value = row[label]
        if isinstance(value, bool) or value not in (0, 1):
            raise _row_error(path, line, row_id, f"unknown {label} label {value!r}", "labels are 0 or 1")
    if row["harmful"] == 1 and row["compliance"] == 0:
        raise _row_error(
            path, line, row_id, "is harmful but not compliant", "a harmful answer attempts the request: compliance 1"
        )
    if row.get("split") not in SPLITS:
        raise _row_error(path, line, row_id, f"unknown split {row.get('split')!r}", f"use one of {', '.join(SPLITS)}")
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        raise _row_error(path, line, row_id, f"lacks {', '.join(missing)}", f"every row needs {', '.join(REQUIRED)}")
    return row


def load_judge_labels(path: str | Path | None = None) -> LabelSet:
    """Read and validate a label file: header, schema, 0/1 labels, unique ids, split by request."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise UserError(f"judge label file {path} not found", "restore corpora/judge_labels.jsonl or fix the path")
    lines = path.read_text(encoding="utf-8").splitlines()
    meta: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    side: dict[str, tuple[str, str]] = {}
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path} line {number}: not valid JSON ({exc.msg})", "write one JSON object per line"
            ) from None
        if meta is None:
            if not isinstance(obj, dict) or not isinstance(obj.get("_meta"), dict):
                raise UserError(f"{path} line {number}: the first line is not a header", 'start with {"_meta": {...}}')
            meta = obj["_meta"]
            continue
        row = _check_row(path, number, obj)
        if row["id"] in seen:
            raise _row_error(path, number, row["id"], f"repeats the id of line {seen[row['id']]}", "make ids unique")
        seen[row["id"]] = number
        other = side.setdefault(row["request"], (row["split"], row["id"]))
        if other[0] != row["split"]:
            raise _row_error(
                path,
                number,
                row["id"],
                f"is in {row['split']} but the same request is in {other[0]} (row {other[1]!r})",
                "split by request: put every answer to one request on one side",
            )
        rows.append(row)
    if meta is None:
        raise UserError(f"judge label file {path} is empty", 'start with a {"_meta": {...}} header line')
    if not rows:
        raise UserError(f"judge label file {path} has a header but no rows", "add labelled pairs")
    return LabelSet(meta=meta, rows=rows, path=str(path))
