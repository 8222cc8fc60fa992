"""Params are checked before any heavy work, in one line naming the valid choices."""

import pytest

from valueharm.core.errors import UserError
from valueharm.experiments.validate import check_params


@pytest.fixture()
def params(repo_root):
    from valueharm.core.params import preset_params

    return preset_params("default", repo_root / "configs")


def test_default_and_smoke_presets_are_valid(params, repo_root):
    assert "vanilla" in check_params(params)["models"]
    from valueharm.core.params import preset_params

    check_params(preset_params("smoke", repo_root / "configs"))


def test_summary_does_not_depend_on_value(params):
    assert check_params({**params, "value": "power"}) == check_params({**params, "value": "Hed"})


def test_bad_value_names_the_choices(params):
    with pytest.raises(UserError) as info:
        check_params({**params, "value": "hedonsim"})
    assert "hedonism" in str(info.value) and "\n" not in str(info.value)


def test_value_without_aligned_model(params):
    with pytest.raises(UserError, match="choose one of: hedonism, power"):
        check_params({**params, "value": "tradition"})


def test_unknown_model_and_judge(params):
    with pytest.raises(UserError, match="not a profile"):
        check_params({**params, "study": {**params["study"], "models": ["vanilla", "hedonismus"]}})
    with pytest.raises(UserError, match="judge.name"):
        check_params({**params, "judge": {**params["judge"], "name": "gpt-judge"}})
