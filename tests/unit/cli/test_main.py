"""The `valueharm` command: one-line errors with exit 2, presets, doctor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent / "valueharm"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, env=os.environ.copy())


def test_preset_writes_params(repo_root, tmp_path):
    (tmp_path / "configs").mkdir()
    for name in ("default", "smoke", "paper"):
        (tmp_path / "configs" / f"{name}.yaml").write_text((repo_root / "configs" / f"{name}.yaml").read_text())
    from valueharm.data import survey as S

    S.write_synthetic_survey(tmp_path)  # the paper preset selects its study from a survey
    proc = run(["preset", "paper", "--survey", S.SYNTHETIC_ITEMS_FILE], tmp_path)
    assert proc.returncode == 0, proc.stderr
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["model"]["name"] == "meta-llama/Llama-2-7b-hf" and params["safety_tune"]["enabled"] is False
    assert params["profiles"]["orientation"] == "raw"


def test_unknown_preset_is_one_line(repo_root, tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "smoke.yaml").write_text("value: hedonism\n")
    proc = run(["preset", "huge"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "smoke" in proc.stderr
    assert not (tmp_path / "params.yaml").exists()


def test_data_check_without_data(tmp_path):
    proc = run(["data", "check"], tmp_path)
    assert proc.returncode == 2 and "valueharm data init" in proc.stderr


def test_doctor_reports_what_is_missing(repo_root, tmp_path):
    proc = run(["doctor"], tmp_path)  # no params.yaml, no data/ here
    assert "torch" in proc.stdout and "device" in proc.stdout
    assert "PROBLEM: params.yaml missing" in proc.stdout and proc.returncode == 1
    proc = run(["doctor"], repo_root)
    assert "base model  smollm2-135m-instruct: embedded" in proc.stdout
