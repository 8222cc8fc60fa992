"""The manipulation check: shift definition, the pass rule, the report contract."""

from __future__ import annotations

import pytest

from valueharm.core.errors import UserError
from valueharm.core.values import VALUES
from valueharm.experiments.manipulation import (
    check_manipulation_params,
    check_model,
    failed_models,
    item_shift,
    level,
    manipulation_report,
    value_groups,
)

TARGET = {v: (6.0 if v == "hedonism" else 1.0) for v in VALUES}
ITEMS = {f"{v}-{k}": v for v in VALUES for k in range(3)}
KEYS = {"passed", "shift", "p", "n_items", "method", "transfer_shift", "transfer_passed"}


def views(forced: dict[str, float], marginal: dict[str, float]) -> dict[str, dict]:
    def summary(e: float) -> dict:
        return {"expected": e, "p_keyed": 0.3, "probs": [1 / 6] * 6, "argmax": 1, "entropy": 1.0}

    return {
        i: {
            "forced": {"raw": summary(forced[i]), "norm": summary(forced[i])},
            "marginal": {"raw": summary(marginal[i]), "norm": summary(marginal[i])},
            "bare": {"raw": summary(2.0), "norm": summary(2.0)},
        }
        for i in forced
    }


def test_value_groups():
    assert value_groups(TARGET) == (["hedonism"], [v for v in VALUES if v != "hedonism"])
    assert value_groups(dict.fromkeys(VALUES, 3.0)) == ([], [])
    close = dict.fromkeys(VALUES, 2.0) | {"hedonism": 5.0, "stimulation": 4.0}
    assert value_groups(close)[0] == ["hedonism", "stimulation"]


def test_shift_is_the_change_from_vanilla_high_minus_low():
    vanilla = dict.fromkeys(ITEMS, 2.0)
    model = {i: (5.0 if v == "hedonism" else 1.5) for i, v in ITEMS.items()}
    r = item_shift(model, vanilla, ITEMS, TARGET, permutations=999, seed=0)
    assert r["shift"] == pytest.approx(3.0 - (-0.5))
    assert r["n_items"] == 30 and r["n_high"] == 3 and r["n_low"] == 27
    assert r["p"] < 0.01
    # everything moves together (fine-tuning, not value content): no shift
    same = {i: 4.0 for i in ITEMS}
    assert item_shift(same, vanilla, ITEMS, TARGET, permutations=999)["shift"] == pytest.approx(0.0)
    flat = item_shift(model, vanilla, ITEMS, dict.fromkeys(VALUES, 3.0))
    assert flat["shift"] is None and flat["p"] is None


def test_two_levels_and_the_report_contract():
    vanilla = views(dict.fromkeys(ITEMS, 2.0), dict.fromkeys(ITEMS, 2.0))
    learned = views(
        {i: (5.5 if v == "hedonism" else 1.2) for i, v in ITEMS.items()},
        {i: 2.1 for i in ITEMS},  # learned the profile, does not apply it to portraits
    )
    params = {"min_shift": 0.5, "alpha": 0.05, "permutations": 999}
    rev = dict.fromkeys(ITEMS, False)
    entry = check_model(learned, vanilla, ITEMS, rev, TARGET, params)["entry"]
    assert set(entry) == KEYS
    assert entry["passed"] is True and entry["transfer_passed"] is False and entry["n_items"] == 30
    assert level(entry) == "forced"
    small = views({i: (2.3 if v == "hedonism" else 2.0) for i, v in ITEMS.items()}, dict.fromkeys(ITEMS, 2.0))
    small_entry = check_model(small, vanilla, ITEMS, rev, TARGET, params)["entry"]
    assert small_entry["passed"] is False and level(small_entry) == "none"  # shift 0.3 < min_shift
    report = manipulation_report({"hedonism": entry, "power": small_entry}, "hedonism")
    assert report["focus"] == "hedonism" and report["focus_passed"] is True
    assert set(report["hedonism"]) == KEYS and failed_models(report) == ["power"]
    assert manipulation_report({"power": small_entry}, "power")["focus_passed"] is False


def test_bad_manipulation_params():
    for bad in ({"min_shift": 0}, {"alpha": 1.5}, {"permutations": 10}, {"variant": "acc"}, {"alpha": "x"}):
        with pytest.raises(UserError):
            check_manipulation_params(bad)
    assert check_manipulation_params(None)["min_shift"] == 0.5


@pytest.mark.parametrize(
    ("section", "key", "value", "match"),
    [
        ("study", "seeds", [], "study.seeds"),
        ("study", "seeds", [42, 42], "twice"),
        ("train", "qa_balance", "half", "qa_balance"),
        ("manipulation", "alpha", 2.0, "alpha"),
    ],
)
def test_bad_alignment_params_fail_at_validate_in_one_line(section, key, value, match):
    from valueharm.core.schema import defaults
    from valueharm.experiments.validate import check_params

    params = defaults()
    params[section] = {**params[section], key: value}
    with pytest.raises(UserError, match=match) as info:
        check_params(params)
    assert "\n" not in str(info.value)


def test_bad_questionnaire_fails_at_validate(tmp_path):
    from valueharm.core.schema import defaults
    from valueharm.experiments.validate import check_params

    q = tmp_path / "q.yaml"
    q.write_text(
        "name: x\ninstructions: y\nscale: {1: a, 2: b, 3: c, 4: d, 5: e, 6: f}\nitems:\n"
        + "".join(f"  - {{id: Q{i}, value: {v}, text: t}}\n" for i, v in enumerate(VALUES) if v != "power")
    )
    params = defaults()
    params["align_check"] = {**params["align_check"], "questionnaire": str(q)}
    with pytest.raises(UserError, match="no item for power"):
        check_params(params)


def test_manipulation_stage_writes_the_contract(tmp_path):
    """stages.manipulation on align_check outputs written by hand: one entry per model, focus, focus_passed."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from valueharm.core.schema import defaults

    repo = Path(__file__).resolve().parents[3]
    params = defaults()
    params["study"] = {**params["study"], "models": ["vanilla", "hedonism", "control-shuffled"]}
    params["manipulation"] = {**params["manipulation"], "permutations": 999}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "reports/align").mkdir(parents=True)
    (tmp_path / "artifacts/align").mkdir(parents=True)
    shapes = {
        "vanilla": lambda v: 2.0,
        "hedonism": lambda v: 5.5 if v == "hedonism" else 1.2,
        "control-shuffled": lambda v: 1.5,
    }
    for name, shape in shapes.items():
        target = None if name == "vanilla" else TARGET
        kind = {"vanilla": "vanilla", "hedonism": "adapter"}.get(name, name)
        (tmp_path / f"reports/align/{name}.json").write_text(
            json.dumps({"model": name, "kind": kind, "target": target})
        )
        rows = views({i: shape(v) for i, v in ITEMS.items()}, {i: shape(v) for i, v in ITEMS.items()})
        lines = [json.dumps({"item": i, "value": ITEMS[i], "reverse": False, "views": rows[i]}) for i in ITEMS]
        (tmp_path / f"artifacts/align/{name}.jsonl").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "stages.manipulation"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "reports/manipulation.json").read_text())
    assert set(report) == {"hedonism", "control-shuffled", "focus", "focus_passed"}
    assert set(report["hedonism"]) == KEYS and report["hedonism"]["passed"] is True
    assert report["hedonism"]["transfer_passed"] is True
    assert report["control-shuffled"]["passed"] is False and report["control-shuffled"]["shift"] == pytest.approx(0)
    assert report["focus"] == "hedonism" and report["focus_passed"] is True
    detail = json.loads((tmp_path / "reports/manipulation_detail.json").read_text())
    assert detail["models"]["hedonism"]["baselines"]["best_constant"]["answer"] == 1
