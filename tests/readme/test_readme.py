"""README.md's commands work exactly as written, in order, in a fresh copy of the repository on
the smoke preset (docs: tests/readme/readme_commands.py says which lines count).

The copy reuses this checkout's .venv through a symlink (no second install); `make` is told not
to rebuild it (`-o .venv/.installed`), so that a test never re-points the shared editable install.
The commands run with PATH stripped of any virtualenv, as in a newcomer's fresh shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .readme_commands import commands, failed_command, readme_commands, script

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=valueharm-test", "-c", "user.email=test@valueharm.invalid"]


def test_parser_follows_the_rules():
    text = "\n".join(
        [
            "```",
            "not bash",
            "```",
            "```bash",
            "make repro    # comment kept",
            "make test",
            "cp ~/x data/  # not in test",
            "# a comment line",
            "valueharm analyze \\",
            "  --out x",
            "```",
            "<!-- not in test -->",
            "```bash",
            "rm -rf /",
            "```",
            "```bash",
            ".venv/bin/dvc exp show",
            "```",
        ]
    )
    got = [(c.text, c.line) for c in commands(text)]
    assert got == [
        ("make repro    # comment kept", 5),
        ("valueharm analyze \\\n  --out x", 9),
        (".venv/bin/dvc exp show", 17),
    ]


def test_readme_has_a_newcomer_path(repo_root):
    cmds = [c.text for c in readme_commands(repo_root / "README.md")]
    assert any(c.startswith("make repro") for c in cmds), cmds
    assert any("dvc exp run" in c for c in cmds), cmds


def clean_path() -> str:
    """PATH without any virtualenv's bin (a newcomer's shell has not activated .venv)."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(p for p in parts if p and not (Path(p) / "activate").exists() and Path(p) != BIN)


@pytest.fixture(scope="module")
def fresh_copy(repo_root, default_data, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("readme") / "valueharm"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=repo_root, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for name in filter(None, listed):
        src = repo_root / name
        if src.is_file() and not name.startswith(("reports/", "dvc.lock")):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    (work / ".venv").symlink_to(repo_root / ".venv", target_is_directory=True)
    shutil.copytree(default_data, work / "data")  # what `valueharm data init` builds (cached, offline)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["valueharm", "preset", "smoke"], ["valueharm", "dag"]):
        subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True)
    subprocess.run([*GIT, "add", "-A"], cwd=work, check=True, capture_output=True)
    subprocess.run([*GIT, "commit", "-qm", "fresh clone"], cwd=work, check=True, capture_output=True)
    return work


@pytest.mark.integration
def test_readme_commands_work_as_written(repo_root, fresh_copy, tmp_path):
    cmds = readme_commands(repo_root / "README.md")
    body = script(cmds)
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    make = shutil.which("make") or "/usr/bin/make"
    (wrapper / "make").write_text(f'#!/bin/sh\nexec {make} -o .venv/.installed "$@"\n')  # never reinstall .venv
    (wrapper / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")} | {
        "PATH": f"{wrapper}{os.pathsep}{clean_path()}",
        "VALUEHARM_PROGRESS": "0",
    }
    proc = subprocess.run(["bash", "-c", body], cwd=fresh_copy, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        failed = failed_command(proc.stderr, cmds)
        where = f"README.md line {failed.line}: `{failed.text}`" if failed else "before the first command"
        pytest.fail(f"{where} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}", pytrace=False)
