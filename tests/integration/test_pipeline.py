"""End to end: real `dvc repro` of the smoke preset in a temporary copy of the repository.

Checks the contract every later stage relies on: a first repro runs every stage, a second runs
nothing, and changing one stage's param re-runs only that stage and what depends on it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def smoke_repo(repo_root, default_data, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], repo_root).stdout.split("\n")
    for name in filter(None, listed):
        src = repo_root / name
        if src.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    shutil.copytree(default_data, work / "data")
    run(["git", "init", "-q", "-b", "main"], work)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], work)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], work)
    run(["valueharm", "preset", "smoke"], work)
    run(["valueharm", "data", "check"], work)
    return work


@pytest.fixture(scope="module")
def first_repro(smoke_repo) -> str:
    return run(["dvc", "repro"], smoke_repo).stdout


def test_first_repro_runs_every_stage(smoke_repo, first_repro):
    stages = ran_stages(first_repro)
    assert {"base_model", "safety_tune", "profiles"} <= stages
    manifest = json.loads((smoke_repo / "artifacts/profiles/manifest.json").read_text())
    assert [p["name"] for p in manifest["profiles"]] == ["hedonism", "hedonism-r01", "power", "power-r01"]
    metrics = json.loads((smoke_repo / "reports/safety_tune.json").read_text())
    assert metrics["enabled"] is True and 0 <= metrics["refusal_rate_harmful"] <= 1
    assert (smoke_repo / "artifacts/vanilla/model.safetensors").exists()


def test_second_repro_runs_nothing(smoke_repo, first_repro):
    out = run(["dvc", "repro"], smoke_repo).stdout
    assert ran_stages(out) == set(), out
    assert run(["dvc", "status"], smoke_repo).stdout.strip().endswith("Data and pipelines are up to date.")


def test_param_change_reruns_only_dependents(smoke_repo, first_repro):
    params = smoke_repo / "params.yaml"
    params.write_text(params.read_text().replace("  nearest: 2\n", "  nearest: 3\n"))
    out = run(["dvc", "repro"], smoke_repo).stdout
    assert ran_stages(out) == {"profiles"}, out
