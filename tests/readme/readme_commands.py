"""README.md's shell commands, in order, as a newcomer would type them.

Rules (so that README stays the single source):
- only fenced blocks tagged ```bash count (plain ``` blocks are pictures or output);
- a block right after a line `<!-- not in test -->` is skipped whole;
- a line whose comment says `# not in test` is skipped (e.g. copying your own ESS file);
- `make test` is skipped (it is what runs this test);
- a line ending in a backslash continues on the next one; comments after `#` stay (bash ignores them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SKIP_LINE = "# not in test"
SKIP_BLOCK = "<!-- not in test -->"
ALWAYS_SKIPPED = (re.compile(r"^make\s+test\b"),)
FENCE = re.compile(r"^(\s*)```+\s*([\w+-]*)")


@dataclass(frozen=True)
class Command:
    text: str
    line: int  # 1-based line in README.md


def bash_blocks(markdown: str) -> list[list[tuple[int, str]]]:
    """The ```bash blocks not preceded by the skip marker: lists of (line number, text)."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] | None = None
    keep = False
    previous = ""
    for number, line in enumerate(markdown.splitlines(), start=1):
        fence = FENCE.match(line)
        if current is None and fence:
            current, keep = [], fence.group(2).lower() == "bash" and previous.strip() != SKIP_BLOCK
            continue
        if current is not None and fence:
            if keep:
                blocks.append(current)
            current, previous = None, ""
            continue
        if current is not None:
            current.append((number, line))
        elif line.strip():
            previous = line
    return blocks


def commands(markdown: str) -> list[Command]:
    """Every command of the kept blocks, in order, continuation lines joined."""
    out: list[Command] = []
    for block in bash_blocks(markdown):
        pending: tuple[int, str] | None = None
        for number, line in block:
            if pending is not None:
                start, text = pending
                line, number = text + "\n" + line, start
                pending = None
            if line.rstrip().endswith("\\"):
                pending = (number, line)
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or SKIP_LINE in line:
                continue
            if any(p.match(stripped) for p in ALWAYS_SKIPPED):
                continue
            out.append(Command(line.strip(), number))
        if pending is not None:
            out.append(Command(pending[1].strip(), pending[0]))
    return out


def script(cmds: list[Command]) -> str:
    """One bash script (state such as `source .venv/bin/activate` carries over), stopping at the
    first failing command, with a marker line before each so that a failure names its command."""
    lines = ["set -eo pipefail"]
    for i, c in enumerate(cmds):
        lines.append(f"echo '::readme-command {i} (README.md line {c.line})' >&2")
        lines.append(c.text)
    return "\n".join(lines) + "\n"


def failed_command(stderr: str, cmds: list[Command]) -> Command | None:
    found = re.findall(r"::readme-command (\d+) ", stderr)
    return cmds[int(found[-1])] if found else None


def readme_commands(path: str | Path) -> list[Command]:
    return commands(Path(path).read_text(encoding="utf-8"))
