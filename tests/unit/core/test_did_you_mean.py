"""Every unknown name fails in one line with the closest valid one ("did you mean hedonism?"):
value, study model, profile, judge, generation backend, benchmark loader, preset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from valueharm.core.errors import UserError
from valueharm.core.registry import Registry, closest, unknown_name


@pytest.fixture()
def params(repo_root):
    from valueharm.core.params import preset_params

    return preset_params("default", repo_root / "configs")


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_closest_and_unknown_name():
    assert closest("hedonsim", ["hedonism", "power"]) == "hedonism"
    assert closest("zzz", ["hedonism", "power"]) is None
    err = unknown_name("judge", "clasifier", ["classifier", "refusal"], where="params judge.name")
    assert (
        str(err) == "unknown judge 'clasifier' (params judge.name); did you mean classifier? valid: classifier, refusal"
    )
    assert "did you mean" not in str(unknown_name("judge", "qqqq", ["classifier", "refusal"]))
    reg: Registry[int] = Registry("thing")
    reg.register("alpha")(1)
    with pytest.raises(UserError, match="did you mean alpha"):
        reg.get("alpah")


def test_value(params):
    from valueharm.core.values import resolve
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError) as info:
        check_params({**params, "value": "hedonsim"})
    assert "did you mean hedonism?" in one_line(info) and "choose one of: hedonism, power" in one_line(info)
    with pytest.raises(UserError) as info:
        resolve("universlism")
    assert "did you mean universalism?" in one_line(info)
    with pytest.raises(UserError) as info:
        check_params({**params, "value": "qqqq"})
    assert "did you mean" not in one_line(info)


def test_study_model(params):
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError) as info:
        check_params({**params, "study": {**params["study"], "models": ["vanilla", "hedonsim"]}})
    assert "'hedonsim' is not a profile" in one_line(info) and "did you mean hedonism?" in one_line(info)
    with pytest.raises(UserError) as info:
        check_params({**params, "study": {**params["study"], "models": ["vanilla", "contrl-shuffled"]}})
    assert "did you mean control-shuffled?" in one_line(info)
    with pytest.raises(UserError) as info:
        check_params({**params, "study": {**params["study"], "control_profile": "powr"}})
    assert "did you mean power?" in one_line(info)


def test_profile_in_manifest():
    from valueharm.profiles.study import model_spec

    manifest = {"hedonism": {"scores": {"hedonism": 6}}, "power": {"scores": {"power": 6}}}
    with pytest.raises(UserError) as info:
        model_spec("icl-hedonsm", manifest)
    assert "did you mean hedonism?" in one_line(info)


def test_judge(params):
    from valueharm.evaluation.judges import get_judge
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError) as info:
        get_judge("clasifier")
    assert "did you mean classifier?" in one_line(info)
    with pytest.raises(UserError) as info:
        check_params({**params, "judge": {**params["judge"], "name": "refusl"}})
    assert "did you mean refusal?" in one_line(info) and "judge.name" in one_line(info)


def test_backend(params):
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError) as info:
        check_params({**params, "generate": {**params["generate"], "backend": "opneai"}})
    assert "unknown generation backend 'opneai'" in one_line(info) and "did you mean openai?" in one_line(info)


def test_benchmark_loader(params):
    from valueharm.data.benchmarks import resolve_loader
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError) as info:
        resolve_loader("harmbnch")
    assert "did you mean harmbench?" in one_line(info)
    bad = {**params["benchmarks"], "default": {**params["benchmarks"]["default"], "loader": "hexphy"}}
    with pytest.raises(UserError) as info:
        check_params({**params, "benchmarks": bad})
    assert "did you mean hexphi?" in one_line(info)


def test_preset(tmp_path):
    (tmp_path / "configs").mkdir()
    for name in ("default", "smoke", "paper"):
        (tmp_path / "configs" / f"{name}.yaml").write_text("value: hedonism\n")
    exe = Path(sys.executable).parent / "valueharm"
    proc = subprocess.run([str(exe), "preset", "smok"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "unknown preset 'smok'" in proc.stderr and "did you mean smoke?" in proc.stderr
    assert "default, paper, smoke" in proc.stderr
