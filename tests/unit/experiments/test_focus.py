"""Stage focus: which model is the focus, the one-line failure on a bad `value`, and metrics.json
that diff cleanly between two values (same keys, numbers only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from valueharm.analysis.results import results_table
from valueharm.analysis.run import compare_paired, validate_results
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES
from valueharm.experiments.focus import check_value_name, focus_hypotheses, focus_metrics, focus_report, resolve_focus

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def extreme(*top: str, high: float = 6.0) -> dict[str, float]:
    return {v: (high if v in top else 1.0) for v in VALUES}


MODELS = [
    {"name": "vanilla", "kind": "vanilla", "profile": None, "target": None},
    {"name": "hedonism-r02", "kind": "adapter", "profile": "hedonism-r02", "target": extreme("hedonism", high=4.0)},
    {"name": "hedonism", "kind": "adapter", "profile": "hedonism", "target": extreme("hedonism")},
    {"name": "hedonism-r01", "kind": "adapter", "profile": "hedonism-r01", "target": extreme("stimulation", high=5.0)},
    {"name": "power", "kind": "adapter", "profile": "power", "target": extreme("power")},
    {
        "name": "custom-a",
        "kind": "adapter",
        "profile": "custom-a",
        "target": extreme("achievement", "hedonism", "power"),
    },
    {"name": "respondent-7", "kind": "adapter", "profile": "respondent-7", "target": extreme("security", high=5.5)},
    {"name": "icl-tradition", "kind": "icl", "profile": "tradition", "target": extreme("tradition")},
    {"name": "control-shuffled", "kind": "control-shuffled", "profile": "hedonism", "target": extreme("hedonism")},
    {"name": "control-benign", "kind": "control-benign", "profile": None, "target": None},
]


# --------------------------------------------------------------------------------------------
# Resolution


def test_profile_name_wins_then_close_profiles_by_rank_then_argmax():
    focus = resolve_focus("Hedonism", MODELS)
    assert focus == {
        "value": "hedonism",
        "model": "hedonism",
        "matched_by": "profile name",
        "alternatives": ["hedonism-r01", "hedonism-r02"],
    }
    without_anchor = [m for m in MODELS if m["name"] != "hedonism"]
    assert resolve_focus("hedonism", without_anchor)["model"] == "hedonism-r01"  # rank 1 before rank 2
    assert resolve_focus("hedonism", without_anchor)["matched_by"] == "close profile of the anchor"


def test_argmax_match_for_values_and_groups():
    focus = resolve_focus("security", MODELS)
    assert (focus["model"], focus["matched_by"]) == ("respondent-7", "target argmax")
    group = resolve_focus("self-enhancement", MODELS)  # achievement + hedonism + power at the top
    assert (group["value"], group["model"]) == ("self_enhancement", "custom-a")


def test_prompt_only_and_controls_are_never_the_focus():
    with pytest.raises(UserError) as err:
        resolve_focus("tradition", MODELS)
    message = str(err.value)
    assert "no model in study.models is aligned to tradition" in message and "\n" not in message
    assert "choose one of: hedonism, power, security, stimulation, self_enhancement;" in message


def test_unknown_value_fails_with_the_valid_choices_on_one_line():
    with pytest.raises(UserError) as err:
        resolve_focus("hedonsim", MODELS)
    message = str(err.value)
    assert "'hedonsim' is not a Schwartz value" in message and "choose one of: hedonism, power," in message
    assert "\n" not in message


def test_params_only_check_agrees_with_the_full_rule():
    assert check_value_name("Power", ["vanilla", "power"]) == "power"
    assert check_value_name("power", ["vanilla", "power-r01"]) == "power"  # a close profile by name
    with pytest.raises(UserError, match="'nope' is not a Schwartz value.*choose one of: hedonism, power$"):
        check_value_name("nope", ["vanilla", "power-r01", "hedonism", "icl-power"])
    with pytest.raises(
        UserError, match="no model in study.models is aligned to achievement; choose one of: hedonism, power;"
    ):
        check_value_name("achievement", ["vanilla", "hedonism", "power", "icl-achievement"])  # anchors only: certain
    with pytest.raises(UserError, match="no value-aligned adapter"):
        check_value_name("power", ["vanilla", "icl-power", "control-benign"])
    # a close or custom profile may match by target argmax (hedonism-r01 does for stimulation above): the stage decides
    assert check_value_name("stimulation", ["vanilla", "hedonism", "hedonism-r01"]) == "stimulation"
    assert resolve_focus("stimulation", MODELS)["model"] == "hedonism-r01"
    assert check_value_name("security", ["vanilla", "respondent-7"]) == "security"


# --------------------------------------------------------------------------------------------
# Metrics


PROMPTS = [(f"a{i}", "adult_content") for i in range(6)] + [(f"m{i}", "malware") for i in range(6)]
SCORES = {  # per model: scores of the 6 adult then the 6 malware prompts
    "vanilla": [1, 2, 1, 2, 1, 2, 2, 2, 3, 2, 2, 3],
    "hedonism": [5, 4, 5, 5, 4, 5, 2, 3, 2, 2, 3, 3],
    "power": [1, 2, 2, 1, 2, 1, 4, 5, 5, 4, 5, 5],
}


def labels_for(model: str) -> list[dict]:
    return [
        {
            "model": model,
            "prompt_id": pid,
            "benchmark": "default",
            "category": cat,
            "score": s,
            "flagged": int(s >= 4),
            "refusal": int(s == 1),
        }
        for (pid, cat), s in zip(PROMPTS, SCORES[model])
    ]


@pytest.fixture(scope="module")
def table():
    specs = [m for m in MODELS if m["name"] in SCORES]
    frame, _ = results_table(specs, {m: labels_for(m) for m in SCORES})
    return validate_results(frame)


def flatten(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


HYPOTHESES = pd.DataFrame(
    {
        "id": ["S01", "S08", "P04"],
        "value": ["hedonism", "power", "power"],
        "category": ["adult_content", "malware", "fraud_deception"],
        "status": ["supported", "contradicted", "inconclusive"],
    }
)


def test_metrics_are_numeric_and_line_up_between_two_values(table):
    out = {}
    for value, nmse in (("hedonism", 0.08), ("power", 0.12)):
        paired = compare_paired(table, value, "vanilla", n_boot=200, n_perm=200, seed=1)
        out[value] = dict(
            flatten(
                focus_metrics(
                    paired, {"nmse": nmse, "spearman": 0.5, "n_values": 10}, focus_hypotheses(HYPOTHESES, value)
                )
            )
        )
    assert list(out["hedonism"]) == list(out["power"])  # same keys: `dvc metrics diff` lines up
    for metrics in out.values():
        assert all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in metrics.values())
    h, p = out["hedonism"], out["power"]
    assert h["categories.adult_content.score.delta"] == pytest.approx(19 / 6, abs=1e-5)
    assert h["categories.malware.score.delta"] == pytest.approx(1 / 6, abs=1e-5)
    assert p["categories.malware.score.delta"] == pytest.approx(14 / 6, abs=1e-5)
    assert h["overall.score.focus"] == pytest.approx(sum(SCORES["hedonism"]) / 12, abs=1e-5)
    assert h["overall.score.ci_low"] <= h["overall.score.delta"] <= h["overall.score.ci_high"]
    assert h["categories.adult_content.score.p"] < 0.05 and h["categories.adult_content.flagged.p"] < 0.05
    assert (h["alignment.nmse"], p["alignment.nmse"]) == (0.08, 0.12)
    assert (h["hypotheses.supported"], h["hypotheses.rows"]) == (1, 1)
    assert (p["hypotheses.contradicted"], p["hypotheses.inconclusive"], p["hypotheses.rows"]) == (1, 1, 2)
    json.dumps(out, allow_nan=False)


def test_headline_names_the_control_and_metrics_carry_the_judge_verdict(table):
    paired = compare_paired(table, "hedonism", "vanilla", n_boot=50, n_perm=50, seed=1)
    control = compare_paired(table, "hedonism", "power", n_boot=50, n_perm=50, seed=1)  # power stands in
    manipulation = {"hedonism": {"passed": True, "shift": 4.5, "transfer_passed": False, "transfer_shift": 0.5}}
    judge = {"reliable": False, "kappa_harmful": None, "n_harmful": 2, "warning": "WARNING: ..."}
    metrics = focus_metrics(paired, None, None, control, manipulation, "hedonism", judge)
    score = metrics["headline"]["score"]
    assert "vanilla" not in score and score["control"] == pytest.approx(sum(SCORES["power"]) / 12, abs=1e-5)
    assert score["focus"] == pytest.approx(sum(SCORES["hedonism"]) / 12, abs=1e-5)
    assert metrics["headline"]["manipulation_level"] == 1 and metrics["headline"]["focus_passed"] == 1
    assert metrics["overall"]["score"]["vanilla"] == pytest.approx(sum(SCORES["vanilla"]) / 12, abs=1e-5)
    assert metrics["judge"] == {"reliable": 0, "kappa_harmful": None, "n_harmful_heldout": 2}  # not measured: None
    assert "judge" not in focus_metrics(paired, None, None)


def test_focus_report_names_the_model_and_keeps_every_test(table):
    focus = resolve_focus("hedonism", MODELS)
    model = {**MODELS[2], "adapter_sha256": "abc"}
    paired = compare_paired(table, "hedonism", "vanilla", n_boot=50, n_perm=50)
    report = focus_report(
        focus,
        model,
        paired,
        {"alignment": {"nmse": 0.1}, "n_items": 40, "n_parsed": 39},
        focus_hypotheses(HYPOTHESES, "hedonism"),
    )
    assert report["model"] == "hedonism" and report["adapter_sha256"] == "abc"
    assert len(report["paired"]) == len(paired) and report["alignment"]["n_parsed"] == 39
    assert [h["id"] for h in report["hypotheses"]] == ["S01"]
    json.dumps(report, allow_nan=False)


def test_group_focus_takes_its_members_hypotheses():
    rows = focus_hypotheses(HYPOTHESES, "self_enhancement")
    assert list(rows["id"]) == ["S01", "S08", "P04"]


# --------------------------------------------------------------------------------------------
# The stage fails before reading any result


def test_stage_fails_on_a_bad_value_before_reading_results(tmp_path):
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"value": "hedonsim", "seed": 1, "study": {"models": ["vanilla", "hedonism"]}})
    )
    (tmp_path / "artifacts/results").mkdir(parents=True)
    (tmp_path / "artifacts/results/models.json").write_text(json.dumps({"models": MODELS[:3]}))
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "stages.focus"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "choose one of: hedonism" in lines[0]
    assert not (tmp_path / "reports").exists()


def test_headline_lines_fall_back_to_the_flagged_rate_and_say_when_there_is_no_control():
    from valueharm.experiments.focus import headline_lines

    nothing = {"delta": None}
    metrics = {
        "headline": {"manipulation_level": 1, "score": nothing, "flagged": {"delta": 0.05, "p": 0.4, "n_pairs": 39}},
        "overall": {"score": nothing, "flagged": {"delta": 0.02, "p": 1.0}},
    }
    lines = headline_lines("hedonism", metrics)
    assert "learned its profile (forced level)" in lines[0]
    assert "vs control-shuffled (matched control), flagged rate delta +0.050 (p 0.4, 39 prompts)" in lines[1]
    assert lines[2] == "Adapter level (seeds as the unit): not measured (no adapter table)."
    assert lines[3] == "Second: hedonism vs vanilla, flagged rate delta +0.020 (p 1.0)."
    empty = {"headline": {"score": nothing, "flagged": nothing}, "overall": {}}
    assert "is not measured" in headline_lines("hedonism", empty)[1]
    assert "no matched control" in headline_lines("hedonism", empty, control=None)[1]
