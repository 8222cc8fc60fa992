"""Model specs of the study: names resolve against the profile manifest."""

import pytest

from valueharm.core.errors import UserError
from valueharm.profiles.study import model_spec

SCORES = {
    v: 1.0
    for v in (
        "achievement",
        "benevolence",
        "conformity",
        "hedonism",
        "power",
        "security",
        "self_direction",
        "stimulation",
        "tradition",
        "universalism",
    )
}
MANIFEST = {
    "hedonism": {"name": "hedonism", "scores": {**SCORES, "hedonism": 6.0}},
    "power-r01": {"name": "power-r01", "scores": {**SCORES, "power": 5.5}},
}


def test_kinds():
    assert model_spec("vanilla", MANIFEST).kind == "vanilla"
    assert model_spec("hedonism", MANIFEST).target["hedonism"] == 6.0
    icl = model_spec("icl-power-r01", MANIFEST)
    assert icl.kind == "icl" and icl.profile == "power-r01" and not icl.trains_adapter
    shuffled = model_spec("control-shuffled", MANIFEST, "hedonism")
    assert shuffled.trains_adapter and shuffled.profile == "hedonism"
    assert model_spec("control-benign", MANIFEST).target is None


def test_profile_not_in_manifest_names_the_choices():
    with pytest.raises(UserError) as info:
        model_spec("hedonsim", MANIFEST)
    assert "hedonism" in str(info.value) and "\n" not in str(info.value)


def test_study_needs_vanilla_and_no_duplicates():
    from valueharm.core.schema import to_dict, validate_params
    from valueharm.experiments.validate import check_params

    with pytest.raises(UserError, match="vanilla"):
        check_params(to_dict(validate_params({"study": {"models": ["hedonism"]}})))
    with pytest.raises(UserError, match="twice"):
        check_params(to_dict(validate_params({"study": {"models": ["vanilla", "hedonism", "hedonism"]}})))


def test_model_kind_is_the_one_name_parser():
    from valueharm.analysis.table import model_kind as table_kind
    from valueharm.profiles.study import model_kind

    assert model_kind("vanilla") == ("vanilla", None)
    assert model_kind("icl-power-r01") == ("icl", "power-r01")
    assert model_kind("control-shuffled") == ("control-shuffled", None)
    assert model_kind("hedonism") == ("adapter", "hedonism")
    assert [table_kind(n) for n in ("vanilla", "ICL_power", "control_benign", "power")] == [
        "vanilla",
        "prompt_only",
        "control",
        "value_aligned",
    ]


def test_an_unknown_control_names_the_known_ones():
    import pytest

    from valueharm.core.errors import UserError
    from valueharm.profiles.study import model_spec

    with pytest.raises(UserError, match="control-shuffled"):
        model_spec("control-shufled", {"hedonism": {"scores": {}}}, "hedonism")


def test_replicate_adapters_in_seed_order_and_only_for_the_hf_backend(tmp_path):
    import json

    from valueharm.profiles.study import replicate_adapters

    model = tmp_path / "hedonism"
    model.mkdir()
    assert replicate_adapters(model) == []  # no spec.json: one adapter or none
    (model / "spec.json").write_text(json.dumps({"seeds": [42, 44, 43]}))
    with pytest.raises(UserError, match="replicate adapter .*seed-44 is missing"):
        replicate_adapters(model)
    for seed in (43, 44):
        (model / "replicates" / f"seed-{seed}").mkdir(parents=True)
        (model / "replicates" / f"seed-{seed}" / "adapter_config.json").write_text("{}")
    assert [s for s, _ in replicate_adapters(model)] == [44, 43]
    with pytest.raises(UserError, match="hedonism has 2 replicate adapters .*only the hf backend"):
        replicate_adapters(model, "openai")
    (model / "spec.json").write_text(json.dumps({"seeds": [42]}))
    assert replicate_adapters(model, "openai") == []  # one seed: any backend
