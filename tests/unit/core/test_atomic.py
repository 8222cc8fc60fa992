"""Atomic writers: float rounding of report JSON (switch off by default), nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from valueharm.core import atomic
from valueharm.core.atomic import round_floats, write_json
from valueharm.core.errors import UserError


def test_round_floats_keeps_types_and_significant_digits():
    obj = {"a": 0.123456789, "b": [1.0e-9 / 3, 2, True, "x"], "c": {"d": 12345.6789}, "e": None}
    out = round_floats(obj, 6)
    assert out == {"a": 0.123457, "b": [3.33333e-10, 2, True, "x"], "c": {"d": 12345.7}, "e": None}
    assert isinstance(out["b"][1], int) and out["b"][2] is True
    assert round_floats(float("nan"), 3) != round_floats(float("nan"), 3)  # NaN passes through untouched


def test_explicit_precision(tmp_path):
    write_json(tmp_path / "m.json", {"loss": 2.0599999999999996}, precision=6)
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": 2.06}


def test_reports_are_rounded_to_six_digits_and_artifacts_are_not(tmp_path, monkeypatch):
    assert atomic.REPORT_JSON_PRECISION == 6  # README, "What is reproducible"
    monkeypatch.chdir(tmp_path)
    value = {"r": 0.30000000000000004, "loss": 2.0123456789}
    write_json("reports/x.json", value)
    write_json("artifacts/y.json", value)
    write_json(tmp_path / "reports" / "z.json", value)
    assert json.loads((tmp_path / "reports/x.json").read_text()) == {"r": 0.3, "loss": 2.01235}
    assert json.loads((tmp_path / "reports/z.json").read_text()) == {"r": 0.3, "loss": 2.01235}
    assert "0.30000000000000004" in (tmp_path / "artifacts/y.json").read_text()  # artifacts keep full precision
    monkeypatch.setattr(atomic, "REPORT_JSON_PRECISION", None)
    write_json("reports/x.json", value)
    assert "0.30000000000000004" in (tmp_path / "reports/x.json").read_text()


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UserError, match=r"no space left on the device while writing .*out.json"):
        write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_temps_of_killed_writers_are_removed_on_the_next_write(tmp_path):
    import subprocess
    import sys

    from valueharm.core.atomic import atomic_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    (tmp_path / f".out.json.{pid}-abc.tmp").write_text("half")
    (tmp_path / f".models.{pid}-xyz.tmp").mkdir()
    (tmp_path / f".models.{pid}-xyz.tmp" / "half.bin").write_bytes(b"\0")
    (tmp_path / f".models.{pid}-old.tmp").mkdir()  # killed between atomic_dir's two renames
    live = tmp_path / f".out.json.{os.getpid()}-live.tmp"  # a writer that still runs: kept
    live.write_text("busy")
    write_json(tmp_path / "out.json", {"v": 1})
    with atomic_dir(tmp_path / "models") as tmp:
        (tmp / "a.txt").write_text("a")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["out.json", "models", live.name]), names


def test_iter_jsonl_names_the_bad_line_and_the_fix(tmp_path):
    from valueharm.core.atomic import iter_jsonl, read_jsonl
    from valueharm.core.errors import UserError

    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"rows.jsonl line 2 is not a JSON object") as info:
        list(iter_jsonl(path, "give objects"))
    assert str(info.value).endswith("; give objects")
    assert list(iter_jsonl(path, objects=False)) == [(1, {"a": 1}), (2, [1, 2])]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(UserError, match=r"line 2 is not valid JSON"):
        read_jsonl(path)
    path.write_bytes(b'{"a": 1}\n\xff\xfe\n')
    with pytest.raises(UserError, match="is not UTF-8 text"):
        read_jsonl(path)


def test_in_a_dvc_repository_temps_live_under_dvc_tmp_and_dead_ones_go(tmp_path, monkeypatch):
    """A rerun that DVC serves from its run-cache runs none of our code, so a killed writer's partial
    output must never sit in the work tree: inside a DVC repository it is under .dvc/tmp/valueharm."""
    import subprocess
    import sys

    from valueharm.core.atomic import TEMP_HOME, atomic_dir

    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    home = tmp_path / TEMP_HOME
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    home.mkdir(parents=True)
    (home / f".hedonism.{dead.stdout.strip()}-abc.tmp").mkdir()  # a killed train's partial adapter
    with atomic_dir(Path("artifacts/models/hedonism")) as tmp:
        assert tmp.parent == home.resolve() or tmp.parent == home
        (tmp / "adapter.bin").write_bytes(b"w")
        assert list(Path("artifacts/models").iterdir()) == []  # nothing half-written beside the outputs
    write_json(Path("reports/x.json"), {"v": 1})
    assert (tmp_path / "artifacts/models/hedonism/adapter.bin").read_bytes() == b"w"
    assert list(home.iterdir()) == []  # the dead writer's folder was swept, ours renamed into place
    with atomic_dir(Path("artifacts/models/hedonism")) as tmp:  # replacing an existing folder
        (tmp / "adapter.bin").write_bytes(b"v2")
    assert (tmp_path / "artifacts/models/hedonism/adapter.bin").read_bytes() == b"v2"
    assert list(home.iterdir()) == [] and sorted(p.name for p in Path("artifacts/models").iterdir()) == ["hedonism"]
