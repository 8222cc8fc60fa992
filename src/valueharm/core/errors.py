"""One exception type for every user-facing failure.

The CLI and the stage scripts catch `UserError` and print its message as one line on stderr
with exit code 2, so that a bad input never ends in a traceback or a half-written output.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""

    def __init__(self, what: str, fix: str | None = None) -> None:
        message = what if fix is None else f"{what}; {fix}"
        super().__init__(" ".join(message.split()))
