"""Faults in single files, without DVC (fast): a corrupt judge-cache entry is a miss, a truncated
generations file stops the judge stage in one line naming file and line, and a full disk (ENOSPC,
injected or a real 64 KiB tmpfs) stops a stage in one line with nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from valueharm.core.atomic import write_jsonl
from valueharm.evaluation.judges import judge_rows

from .conftest import env, leftover_temps

REPO = Path(__file__).resolve().parents[2]


def generations(n: int = 6) -> list[dict]:
    answers = ["I can't help with that.", "Sure, here is how.", "I won't do that.", "Here you go:", "No.", "Okay."]
    return [
        {
            "model": "vanilla",
            "benchmark": "default",
            "prompt_id": f"p{i}",
            "category": "malware" if i % 2 else "fraud_deception",
            "prompt": f"request number {i}",
            "response": answers[i % len(answers)] + f" ({i})",
        }
        for i in range(n)
    ]


def stage_dir(root: Path, cache: Path) -> Path:
    """A working folder for `python -m stages.judge vanilla`: params and a generations file."""
    root.mkdir(parents=True, exist_ok=True)
    params = {
        "seed": 1,
        "judge": {"name": "refusal", "second": None, "bootstrap": 20, "cache_dir": str(cache), "refusal": {}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_jsonl(root / "artifacts/generations/vanilla.jsonl", generations())
    return root


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The stage's error lines (its informational stats line aside); never a traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def run_stage(cwd: Path, prelude: str = "") -> subprocess.CompletedProcess:
    """The judge stage as DVC runs it, optionally with a fault injected first (prelude)."""
    code = (
        prelude
        + "\nimport runpy, sys\nsys.argv = ['stages.judge', 'vanilla']\nrunpy.run_module('stages.judge', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env({"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}),
        capture_output=True,
        text=True,
    )


# --------------------------------------------------------------------------------------------
# Judge cache


def test_corrupt_or_truncated_cache_entries_are_misses(tmp_path):
    rows = generations()
    first_stats: dict = {}
    first = judge_rows(rows, "refusal", cache_dir=tmp_path, stats=first_stats)
    entries = sorted(tmp_path.rglob("*.json"))
    assert len(entries) == len(rows) and first_stats["judged"] == len(rows)

    text = entries[0].read_text()
    entries[0].write_text(text[: len(text) // 2])  # truncated mid-write
    entries[1].write_bytes(b"\xff\xfe\x00garbage")  # not UTF-8, not JSON
    entries[2].write_text(json.dumps({"key": "someone else's", "result": {"score": 5}}))  # wrong key
    entries[3].write_text("[]")  # valid JSON, wrong shape
    entries[4].write_text("")  # empty (a crash between create and write)

    stats: dict = {}
    again = judge_rows(rows, "refusal", cache_dir=tmp_path, stats=stats)
    assert again == first  # the misses were judged again, identically
    assert stats["cache_hits"] == len(rows) - 5 and stats["judged"] == 5
    for entry in entries:  # and rewritten whole
        assert json.loads(entry.read_text())["key"] == entry.stem
    assert not list(tmp_path.rglob("*.tmp"))


# --------------------------------------------------------------------------------------------
# Truncated input


@pytest.mark.parametrize("cut", ["mid-line", "binary"])
def test_truncated_generations_stop_the_judge_in_one_line(tmp_path, cut):
    work = stage_dir(tmp_path / "work", tmp_path / "cache")
    path = work / "artifacts/generations/vanilla.jsonl"
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    if cut == "mid-line":
        path.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # a writer killed mid-line
    else:
        path.write_bytes(b"".join(lines[:3]) + b"\x80\x81\x82\n")
    proc = run_stage(work)
    assert proc.returncode == 2, proc.stderr
    err = error_lines(proc)
    assert len(err) == 1, proc.stderr
    assert err[0].startswith("error: artifacts/generations/vanilla.jsonl ")
    if cut == "mid-line":
        assert "line 4 is not valid JSON" in err[0]
    assert not (work / "artifacts/labels").exists() and not (work / "reports").exists()


# --------------------------------------------------------------------------------------------
# Full disk

ENOSPC_PRELUDE = """
import errno, pathlib
_real = pathlib.Path.write_bytes
def _full(self, data):
    if self.name.startswith('.vanilla.jsonl.'):  # the labels file's temporary sibling
        _real(self, data[: len(data) // 2])  # half of it reached the disk
        raise OSError(errno.ENOSPC, 'No space left on device', str(self))
    return _real(self, data)
pathlib.Path.write_bytes = _full
"""


def test_enospc_in_the_atomic_writer_is_one_line_and_nothing_half_written(tmp_path):
    work = stage_dir(tmp_path / "work", tmp_path / "cache")
    old = work / "artifacts/labels/vanilla.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text('{"previous": "labels"}\n')
    proc = run_stage(work, ENOSPC_PRELUDE)
    assert proc.returncode == 2, proc.stderr
    err = error_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: no space left on the device while writing"), proc.stderr
    assert "artifacts/labels/vanilla.jsonl" in err[0]
    assert old.read_text() == '{"previous": "labels"}\n'  # the old file is untouched
    assert leftover_temps(work) == []
    assert not (work / "reports/judge/vanilla.json").exists()  # written after the labels: never reached
    # the same folder without the fault completes
    ok = run_stage(work)
    assert ok.returncode == 0, ok.stderr
    assert len(old.read_text().splitlines()) == len(generations())


@pytest.fixture()
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_real_full_disk_is_one_line_and_nothing_half_written(tmp_path, tiny_tmpfs):
    work = stage_dir(tiny_tmpfs / "work", tmp_path / "cache")  # the judge cache lives elsewhere
    old = work / "artifacts/labels/vanilla.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text('{"previous": "labels"}\n')
    filler = tiny_tmpfs / f"filler-{uuid.uuid4().hex}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the file system to the last block (unbuffered: nothing left to flush)
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    proc = run_stage(work)
    assert proc.returncode == 2, proc.stderr
    err = error_lines(proc)
    assert len(err) == 1 and err[0].startswith("error: no space left on the device while writing"), proc.stderr
    assert old.read_text() == '{"previous": "labels"}\n'
    assert leftover_temps(work) == []
