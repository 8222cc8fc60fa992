"""Typed, strict params: every bad param fails in one line naming the key; presets are overlays."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from valueharm.core.errors import UserError
from valueharm.core.params import preset_params
from valueharm.core.schema import Params, defaults, merge, to_dict, validate_params

REPO = Path(__file__).resolve().parents[3]

BAD = [
    ({"train": {"stage1": {"lr": "abc"}}}, "train.stage1.lr"),
    ({"train": {"lora": {"r": 0}}}, "train.lora.r"),
    ({"model": {"dtype": "float8"}}, "model.dtype"),
    ({"generate": {"backend": "vllm"}}, "generate.backend"),
    ({"analyze": {"alpha": 2}}, "analyze.alpha"),
    ({"train": {"stage1": {"bogus": 1}}}, "train.stage1.bogus"),
    ({"bogus_section": {}}, "bogus_section"),
    ({"seed": "x"}, "seed"),
    ({"seed": True}, "seed"),
    ({"study": {"models": []}}, "study.models"),
    ({"profiles": {"orientation": "reversd"}}, "profiles.orientation"),
    ({"safety_tune": {"enabled": "yes"}}, "safety_tune.enabled"),
    ({"train": {"stage2": {"schedule": "cosine"}}}, "train.stage2.schedule"),
    ({"benchmarks": {"x": {"loader": "valueharm", "limit": 0}}}, "benchmarks.x.limit"),
    ({"generate": {"sampling": {"default": {"top_p": 1.5}}}}, "generate.sampling.default.top_p"),
    ({"judge_model": {"folds": 1}}, "judge_model.folds"),
    ({"judge_model": {"kind": "svm"}}, "judge_model.kind"),
    ({"judge_model": {"epochs": 0}}, "judge_model.epochs"),
    ({"judge_model": {"dtype": "float16"}}, "judge_model.dtype"),
    ({"mitigate": {"batch_size": -3}}, "mitigate.batch_size"),
    ({"report": {"dpi": "high"}}, "report.dpi"),
    ({"analyze": {"methods": ["pearson", "cosine"]}}, "analyze.methods[1]"),
    ({"generate": {"openai": {"retries": 1.5}}}, "generate.openai.retries"),
]


@pytest.mark.parametrize(("overlay", "key"), BAD, ids=[k for _, k in BAD])
def test_bad_params_fail_in_one_line_naming_the_key(overlay, key):
    with pytest.raises(UserError) as err:
        validate_params(merge(defaults(), overlay))
    message = str(err.value)
    assert f"`{key}`" in message and "\n" not in message


def test_typos_get_a_closest_match():
    with pytest.raises(UserError, match="did you mean `train.stage1.lr`"):
        validate_params(merge(defaults(), {"train": {"stage1": {"lrr": 1e-3}}}))
    with pytest.raises(UserError, match="did you mean float32"):
        validate_params(merge(defaults(), {"model": {"dtype": "float23"}}))


def test_defaults_live_in_the_schema_and_fill_missing_keys():
    filled = to_dict(validate_params({"train": {"lora": {"r": 4}}}))
    assert filled["train"]["lora"] == {**to_dict(Params())["train"]["lora"], "r": 4}
    assert filled["train"]["lora"]["top_layers"] == 12  # the parent's default, not the class's None


def test_yaml_exponent_text_is_a_number():
    assert validate_params({"train": {"stage1": {"lr": "1e-3"}}}).train.stage1.lr == pytest.approx(1e-3)


def test_presets_are_overlays_that_validate():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        full = preset_params(path.stem, REPO / "configs")
        assert to_dict(validate_params(full)) == full
    smoke = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    assert "value" not in smoke and "seed" not in smoke  # lists only what differs


def test_committed_params_yaml_is_the_default_preset():
    committed = yaml.safe_load((REPO / "params.yaml").read_text())
    assert committed == preset_params("default", REPO / "configs")


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(UserError, match="did you mean smoke"):
        preset_params("smok", REPO / "configs")
