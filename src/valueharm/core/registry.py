"""One registry class for every pluggable kind: judges, generation backends, benchmark loaders,
base-model sources (after lm-evaluation-harness's `lm_eval/api/registry.py`).

A new judge, backend, loader or source is one decorated class or function:

    JUDGES = Registry("judge")

    @JUDGES.register("refusal")
    class RefusalJudge(Judge): ...

Unknown names fail with one line that lists the valid ones and the closest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from valueharm.core.errors import UserError

T = TypeVar("T")


def closest(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest valid name to a mistyped one, or None when nothing is close."""
    matches = difflib.get_close_matches(str(name), sorted(map(str, choices)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_name(
    kind: str, name: object, choices: list[str] | tuple[str, ...] | set[str], where: str = ""
) -> UserError:
    """The one-line error for an unknown name: what is wrong, the closest match, the valid names."""
    guess = closest(str(name), choices)
    hint = f"did you mean {guess}? " if guess else ""
    place = f" ({where})" if where else ""
    return UserError(f"unknown {kind} {name!r}{place}", f"{hint}valid: {', '.join(sorted(map(str, choices)))}")


class Registry(Generic[T]):
    """Name -> object, filled by `@registry.register(name)` at import time."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            return obj

        return wrap

    def get(self, name: str, where: str = "") -> T:
        if name not in self._items:
            raise unknown_name(self.kind, name, self.names(), where)
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> T:
        return self.get(name)
