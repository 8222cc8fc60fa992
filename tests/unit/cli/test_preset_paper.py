"""`valueharm preset paper --survey FILE`: the study's models come from the profile selection;
`valueharm serve`: the one vLLM command for the study."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from valueharm.data import survey as S
from valueharm.profiles.selection import profile_names

BIN = Path(sys.executable).parent / "valueharm"
REPO = Path(__file__).resolve().parents[3]
LLAMA_REVISION = "01c7f73d771dfac7d292323805ebc428287df4f9"


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, env=os.environ.copy())


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    return tmp_path


@pytest.fixture(scope="module")
def synthetic_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("survey")
    S.write_synthetic_survey(out)
    return out / S.SYNTHETIC_ITEMS_FILE


def study_profiles(models: list[str]) -> list[str]:
    return [m for m in models if m != "vanilla" and not m.startswith(("icl-", "control-"))]


def test_preset_paper_takes_every_profile_from_the_survey(work: Path, synthetic_items: Path) -> None:
    proc = run(["preset", "paper", "--survey", str(synthetic_items)], work)
    assert proc.returncode == 0, proc.stderr
    first = (work / "params.yaml").read_bytes()
    params = yaml.safe_load(first)
    models = params["study"]["models"]
    names = profile_names("all", "all", 10)
    assert len(names) == 154 and study_profiles(models) == names
    assert models[0] == "vanilla" and models[-2:] == ["control-shuffled", "control-benign"]
    anchors = [n for n in names if "-r" not in n]
    assert [m for m in models if m.startswith("icl-")] == [f"icl-{n}" for n in anchors]  # default: --icl anchors
    assert "(171 study models)" in proc.stdout
    assert params["profiles"]["survey"] == str(synthetic_items) and params["profiles"]["ties"] == "release"
    assert params["model"]["revision"] == LLAMA_REVISION and params["generate"]["chat_template"] is False
    # deterministic: the same command writes the same bytes
    assert run(["preset", "paper", "--survey", str(synthetic_items)], work).returncode == 0
    assert (work / "params.yaml").read_bytes() == first
    # fewer baselines on request; the file validates either way (validate stage: load_params)
    assert (
        run(["preset", "paper", "--survey", str(synthetic_items), "--icl", "all", "--ties", "file"], work).returncode
        == 0
    )
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert len(params["study"]["models"]) == 1 + 154 + 154 + 2 and params["profiles"]["ties"] == "file"


def test_survey_without_pvq21_columns_is_one_line(work: Path, tmp_path: Path) -> None:
    bad = tmp_path / "not_ess.csv"
    bad.write_text("idno,ipcrtiv,imprich\n1,2,3\n")
    proc = run(["preset", "paper", "--survey", str(bad)], work)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "missing PVQ-21 item columns: ipeqopt" in proc.stderr and "ipcrtiv," not in proc.stderr
    assert not (work / "params.yaml").exists()


def test_paper_preset_without_its_survey_says_what_to_do(work: Path) -> None:
    proc = run(["preset", "paper"], work)  # configs/paper.yaml names data/survey/ess.csv, absent here
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "data/survey/ess.csv not found" in proc.stderr and "--survey" in proc.stderr
    assert run(["preset", "smoke"], work).returncode == 0  # presets that list their models are unchanged


@pytest.mark.realdata
def test_preset_paper_on_the_real_ess_file(work: Path, realdata: Path) -> None:
    proc = run(["preset", "paper", "--survey", str(realdata / "ess.csv")], work)
    assert proc.returncode == 0, proc.stderr
    models = yaml.safe_load((work / "params.yaml").read_text())["study"]["models"]
    assert len(study_profiles(models)) == 154 and study_profiles(models) == profile_names("all", "all", 10)


def test_serve_prints_one_vllm_command_for_the_study(work: Path, synthetic_items: Path) -> None:
    assert run(["preset", "paper", "--survey", str(synthetic_items)], work).returncode == 0
    proc = run(["serve"], work)
    assert proc.returncode == 0, proc.stderr
    argv = shlex.split(proc.stdout)
    assert argv[:3] == ["vllm", "serve", "meta-llama/Llama-2-7b-hf"]
    flag = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1) if argv[i].startswith("--")}
    assert flag["--revision"] == LLAMA_REVISION and flag["--served-model-name"] == "vanilla"
    assert "--enable-lora" in argv and flag["--max-loras"] == "8" and flag["--max-cpu-loras"] == "156"
    assert flag["--max-lora-rank"] == "8" and flag["--port"] == "8000" and flag["--dtype"] == "bfloat16"
    modules = argv[argv.index("--lora-modules") + 1 :]
    adapters = [*profile_names("all", "all", 10), "control-shuffled", "control-benign"]
    assert modules == [f"{n}=artifacts/models/{n}" for n in adapters]  # every adapter, no icl- baseline
    # --run before training: one line naming what is missing, nothing started
    proc = run(["serve", "--run"], work)
    assert proc.returncode == 2 and proc.stderr.startswith("error: adapters not trained yet: achievement")
    assert proc.stderr.count("\n") == 1


def test_serve_on_the_default_preset_serves_the_safety_tuned_vanilla(work: Path) -> None:
    assert run(["preset", "default"], work).returncode == 0
    argv = shlex.split(run(["serve"], work).stdout)
    assert argv[:3] == ["vllm", "serve", "artifacts/vanilla"] and "--revision" not in argv
    assert argv[argv.index("--max-loras") + 1] == "3"  # min(adapters, generate.openai.max_loras)
