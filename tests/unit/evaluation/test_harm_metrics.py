"""Per-model harm metrics, bootstrap CIs and Cohen's kappa."""

from __future__ import annotations

import json
import random

import pytest

from valueharm.core.errors import UserError
from valueharm.data.benchmarks import UNMAPPED
from valueharm.evaluation import harm_metrics as H


def judged(model, prompt_id, category, score, flagged, refusal, benchmark="harm_benchmark", judge="classifier"):
    return {
        "model": model,
        "prompt_id": prompt_id,
        "benchmark": benchmark,
        "category": category,
        "score": score,
        "flagged": flagged,
        "refusal": refusal,
        "judge": judge,
        "judge_version": "1",
    }


ROWS = [
    judged("vanilla", "a", "malware", 1, 0, 1),
    judged("vanilla", "b", "malware", 2, 0, 1),
    judged("vanilla", "c", "adult_content", 5, 1, 0),
    judged("vanilla", "d", "adult_content", 4, 1, 0),
    judged("hedonism", "a", "malware", 5, 1, 0),
    judged("hedonism", "b", "malware", 5, 1, 0),
    judged("hedonism", "c", "adult_content", 3, 0, 0),
    judged("hedonism", "d", "adult_content", None, None, 0),  # parse failure
    judged("hedonism", "e", None, 1, 0, 1, benchmark="harmbench"),
]


def test_values_by_hand():
    result = H.per_model_metrics(ROWS, n_boot=200, seed=1)
    assert sorted(result) == ["hedonism", "vanilla"]
    v = result["vanilla"]
    assert v["n"] == 4 and v["parse_failures"] == 0
    assert v["overall"]["mean_score"]["value"] == 3.0
    assert v["overall"]["harm_rate"]["value"] == 0.25
    assert v["overall"]["flagged_rate"]["value"] == 0.5
    assert v["overall"]["refusal_rate"]["value"] == 0.5
    assert v["per_category"]["malware"]["mean_score"]["value"] == 1.5
    assert v["per_category"]["adult_content"]["harm_rate"]["value"] == 0.5
    h = result["hedonism"]
    assert h["n"] == 5 and h["parse_failures"] == 1
    assert h["overall"]["mean_score"] == {**h["overall"]["mean_score"], "value": 3.5, "n": 4}
    assert h["overall"]["refusal_rate"]["n"] == 5
    assert list(h["per_category"]) == ["malware", "adult_content", UNMAPPED]  # canonical order, unmapped last
    assert sorted(h["per_benchmark"]) == ["harm_benchmark", "harmbench"]
    assert h["per_benchmark"]["harmbench"]["mean_score"]["value"] == 1.0


def test_cis_bracket_the_value_and_are_seeded():
    rng = random.Random(0)
    rows = [
        judged(
            "m",
            str(i),
            "malware" if i % 2 else "fraud_deception",
            rng.randint(1, 5),
            rng.randint(0, 1),
            rng.randint(0, 1),
        )
        for i in range(200)
    ]
    a = H.per_model_metrics(rows, n_boot=500, seed=7)
    b = H.per_model_metrics(rows, n_boot=500, seed=7)
    c = H.per_model_metrics(rows, n_boot=500, seed=8)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) != json.dumps(c, sort_keys=True)
    assert a["m"]["overall"]["harmful_rate"]["n"] == 0  # these rows carry no `harmful`: n 0, value None
    for metric in ("mean_score", "harm_rate", "flagged_rate", "refusal_rate"):
        cell = a["m"]["overall"][metric]
        assert cell["ci_low"] <= cell["value"] <= cell["ci_high"] and cell["ci_low"] < cell["ci_high"]
    # about the normal-theory width for a proportion with n = 200
    flagged = a["m"]["overall"]["flagged_rate"]
    assert 0.08 < flagged["ci_high"] - flagged["ci_low"] < 0.2


def test_adding_a_model_does_not_move_another_models_cis():
    alone = H.per_model_metrics([r for r in ROWS if r["model"] == "vanilla"], n_boot=300, seed=0)
    together = H.per_model_metrics(ROWS, n_boot=300, seed=0)
    assert alone["vanilla"] == together["vanilla"]


def test_cis_come_from_the_shared_bootstrap():
    from valueharm.analysis.paired import bootstrap_ci

    values = [1.0] * 30 + [0.0] * 70
    cell = H.estimate(values, n_boot=2000, ci=0.95, seed=3, key=("k",))
    low, high = bootstrap_ci(values, n_boot=2000, seed=3, level=0.95, key=("k",))
    assert cell == {"value": 0.3, "ci_low": round(low, H.ROUND), "ci_high": round(high, H.ROUND), "n": 100}
    assert abs(cell["ci_low"] - 0.21) < 0.03 and abs(cell["ci_high"] - 0.39) < 0.03  # ~ 0.3 +- 1.96 * 0.046


def test_degenerate_groups():
    assert H.estimate([], 100, 0.95, 0, ("k",)) == {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    assert H.estimate([5.0, 5.0], 100, 0.95, 0, ("k",)) == {"value": 5.0, "ci_low": 5.0, "ci_high": 5.0, "n": 2}
    assert H.estimate([2.0], 100, 0.95, 0, ("k",)) == {"value": 2.0, "ci_low": 2.0, "ci_high": 2.0, "n": 1}


def test_metrics_table_is_long_and_json_safe():
    result = H.per_model_metrics(ROWS, n_boot=50)
    table = H.metrics_table(result)
    assert {r["scope"] for r in table} == {"overall", "category", "benchmark"}
    assert len([r for r in table if r["scope"] == "overall"]) == 2 * len(H.METRICS)
    json.dumps(table, allow_nan=False)


def test_kappa_is_the_shared_one_and_none_when_undefined():
    from sklearn.metrics import cohen_kappa_score

    a, b = [0, 1, 1, 0, 1, 0, 0], [0, 1, 0, 0, 1, 1, 0]
    assert H._kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
    assert H._kappa([0, 1, 1, 0], [0, 1, 1, 0]) == 1.0
    assert H._kappa([1, 1, 1], [1, 1, 1]) is None
    assert H._kappa([], []) is None
    with pytest.raises(UserError, match="different numbers"):
        H._kappa([1], [1, 0])
    assert H.classification_metrics([1, 1], [1, 1])["kappa"] is None


def test_judge_agreement_pairs_rows():
    from sklearn.metrics import cohen_kappa_score

    other = [dict(r, judge="refusal", flagged=(1 - r["refusal"])) for r in ROWS if r["prompt_id"] != "e"]
    other.append(judged("vanilla", "zzz", "malware", 1, 0, 1, judge="refusal"))
    report = H.judge_agreement(ROWS, other)
    assert report["judge_a"] == "classifier@1" and report["judge_b"] == "refusal@1"
    assert report["n"] == 7 and report["n_missing_label"] == 1  # hedonism/d has no classifier label
    assert report["n_only_a"] == 1 and report["n_only_b"] == 1
    a = [r["flagged"] for r in ROWS if r["prompt_id"] != "e" and r["flagged"] is not None]
    b = [1 - r["refusal"] for r in ROWS if r["prompt_id"] != "e" and r["flagged"] is not None]
    assert report["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)


def test_bad_input():
    with pytest.raises(UserError, match="no judged rows"):
        H.per_model_metrics([])
    with pytest.raises(UserError, match="score 7"):
        H.per_model_metrics([judged("m", "a", "malware", 7, 1, 0)])
    with pytest.raises(UserError, match="flagged=2"):
        H.per_model_metrics([judged("m", "a", "malware", 3, 2, 0)])
    with pytest.raises(UserError, match="no `model`"):
        H.per_model_metrics([{"score": 1}])
