"""Content-hash cache for judge calls.

A judgement is stored under a key that hashes the judge id, its version, its configuration (for
the classifier: the trained artefact's bytes; for the rubric: endpoint model and rubric text),
any per-item setting (the rubric variant) and the exact prompt and response. Identical answers
are therefore judged once, whichever model produced them, and changing one model's answers
re-judges only those answers. Changing a judge's version or configuration changes every key.

Layout: `<root>/<key[:2]>/<key>.json`, one small JSON file per judgement, written atomically, so
parallel `judge@<model>` stages can share one cache. The cache lives outside DVC's outputs (by
default `$VALUEHARM_CACHE/judge`): it only saves work and never changes a result. Unreadable
entries count as misses. Parse failures are not stored, so a later run asks again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from valueharm.core.atomic import write_text
from valueharm.data.sources import cache_dir as _valueharm_cache


def default_cache_dir() -> Path:
    return _valueharm_cache() / "judge"


def content_hash(obj: Any) -> str:
    """SHA-256 of canonical JSON (sorted keys, no whitespace variation)."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(config_hash: str, prompt: str, response: str, extra: dict[str, Any] | None = None) -> str:
    return content_hash({"config": config_hash, "prompt": prompt, "response": response, "extra": extra or {}})


class JudgeCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if not isinstance(value, dict) or value.get("key") != key or not isinstance(value.get("result"), dict):
            self.misses += 1
            return None
        self.hits += 1
        return value["result"]

    def put(self, key: str, result: dict[str, Any]) -> None:
        text = json.dumps({"key": key, "result": result}, sort_keys=True, ensure_ascii=False, allow_nan=False)
        write_text(self._path(key), text + "\n")
        self.writes += 1
