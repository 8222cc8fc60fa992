"""data init: deterministic, matches data.dvc, verifies pinned wheels, never half-writes."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from valueharm.data import sources as datasources
from valueharm.core.errors import UserError


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_are_byte_identical(default_data, tmp_path):
    again = datasources.materialize(tmp_path / "data")
    first, second = tree_hashes(default_data), tree_hashes(again)
    assert first == second
    assert "models/SmolLM2-135M-Instruct.Q4_1.gguf" in first
    assert "survey/synthetic_ess_items.csv" in first
    assert any(k.startswith("judge/pyrit_scorer_evals/") for k in first)


def test_default_data_matches_committed_data_dvc(default_data, repo_root, tmp_path):
    """A fresh clone's `valueharm data init` reproduces what data.dvc records (dvc status clean)."""
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(repo_root / "data.dvc", work / "data.dvc")
    shutil.copytree(default_data, work / "data")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=work, check=True)
    datasources.check_against_dvc(work)  # raises UserError on any difference


def test_changed_data_is_reported(default_data, repo_root, tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(repo_root / "data.dvc", work / "data.dvc")
    shutil.copytree(default_data, work / "data")
    (work / "data" / "corpora" / "extra.txt").write_text("not in data.dvc\n")
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=work, check=True)
    with pytest.raises(UserError, match="data does not match data.dvc"):
        datasources.check_against_dvc(work)


def test_wheel_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEHARM_CACHE", str(tmp_path))
    wheel = datasources.WHEELS["pyrit"]
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / wheel.filename).write_bytes(b"not the pinned wheel")
    with pytest.raises(UserError) as info:
        datasources.fetch_wheel("pyrit")
    message = str(info.value)
    assert "SHA-256" in message and "delete" in message and "\n" not in message


def test_failed_init_leaves_nothing(tmp_path, monkeypatch):
    def broken(out: Path) -> None:
        (out / "partial.txt").write_text("half")
        raise UserError("component failed", "test")

    monkeypatch.setitem(datasources.COMPONENTS, "zz_broken", broken)
    monkeypatch.setitem(datasources.COMPONENTS, "smollm2", lambda out: None)
    with pytest.raises(UserError):
        datasources.materialize(tmp_path / "data")
    assert not (tmp_path / "data").exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_data_needs_force(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text("x\n")
    with pytest.raises(UserError, match="--force"):
        datasources.materialize(tmp_path / "data")
