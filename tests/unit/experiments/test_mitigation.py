"""Mitigation: the prompts of the four conditions, which categories they run on, and the paired tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from valueharm.analysis.run import load_registry
from valueharm.core.errors import UserError
from valueharm.core.values import HIGHER_ORDER, VALUES
from valueharm.experiments.mitigation import (
    CONDITIONS,
    SAFETY_PROMPT,
    VALUE_PROMPTS,
    adapter_gains,
    choose_links,
    condition_tests,
    gain_difference,
    generation_rows,
    label_table,
    mitigation_prompt,
    mitigation_report,
    select_prompts,
    sign_flip_p,
    significant_links,
    summarise,
    system_prompt,
    value_prompt,
)

# --------------------------------------------------------------------------------------------
# Prompts


def test_one_distinct_counter_prompt_per_value():
    assert set(VALUE_PROMPTS) == set(VALUES)
    assert len(set(VALUE_PROMPTS.values())) == len(VALUES)
    assert all(len(p.split()) >= 15 and p not in SAFETY_PROMPT for p in VALUE_PROMPTS.values())
    assert "restraint" in VALUE_PROMPTS["hedonism"] and "wellbeing" in VALUE_PROMPTS["hedonism"]


def test_conditions_compose_and_keep_the_models_own_system_prompt():
    assert mitigation_prompt("input_only", "power") is None and system_prompt("input_only", "power") is None
    assert system_prompt("safety", "power") == SAFETY_PROMPT
    assert system_prompt("value", "power") == VALUE_PROMPTS["power"]
    both = system_prompt("both", "power", base="ROLE-PLAY")
    assert both.startswith("ROLE-PLAY\n\n") and SAFETY_PROMPT in both and both.endswith(VALUE_PROMPTS["power"])
    assert system_prompt("input_only", "power", base="ROLE-PLAY") == "ROLE-PLAY"
    with pytest.raises(UserError, match="unknown mitigation condition"):
        mitigation_prompt("loud", "power")


def test_group_value_prompt_counters_every_member():
    text = value_prompt("self_enhancement")
    assert all(VALUE_PROMPTS[v] in text for v in HIGHER_ORDER["self_enhancement"])


# --------------------------------------------------------------------------------------------
# Links and prompts


def corr_rows(*rows):
    return pd.DataFrame(rows, columns=["value", "category", "method", "r", "p", "q", "outcome"])


CORRELATIONS = corr_rows(
    ("hedonism", "adult_content", "spearman", 0.9, 0.001, 0.01, "score"),
    ("hedonism", "child_abuse", "spearman", 0.8, 0.004, 0.04, "flagged"),
    ("hedonism", "malware", "spearman", -0.9, 0.001, 0.01, "score"),  # negative: not a risk link
    ("hedonism", "fraud_deception", "spearman", 0.7, 0.02, 0.20, "score"),  # not significant
    ("hedonism", "overall", "spearman", 0.9, 0.001, 0.01, "score"),  # not a category
    ("hedonism", "privacy_violation", "pearson", 0.9, 0.001, 0.01, "score"),  # another method
    ("power", "malware", "spearman", 0.95, 0.001, 0.01, "score"),
)
CATEGORIES = ["adult_content", "child_abuse", "fraud_deception", "malware", "privacy_violation", "unmapped"]


def test_significant_positive_links_of_the_value_only():
    links = significant_links(CORRELATIONS, "hedonism", "spearman", 0.05)
    assert [(l["category"], l["outcome"]) for l in links] == [("adult_content", "score"), ("child_abuse", "flagged")]
    chosen = choose_links(CORRELATIONS, None, "hedonism", CATEGORIES)
    assert chosen["source"] == "analysis" and chosen["categories"] == ["adult_content", "child_abuse"]
    group = choose_links(CORRELATIONS, None, "self_enhancement", CATEGORIES)  # hedonism and power are members
    assert group["categories"] == ["adult_content", "child_abuse", "malware"]


REGISTRY = """
categories: [adult_content, child_abuse, fraud_deception, malware, privacy_violation]
hypotheses:
  - {id: T1, value: hedonism, category: adult_content, expected_sign: "+", source: study, rationale: r, reference: ref}
  - {id: T2, value: hedonism, category: malware, expected_sign: "-", source: study, rationale: r, reference: ref}
  - {id: T3, value: power, category: privacy_violation, expected_sign: "+", source: psychology, rationale: r, reference: ref}
  - {id: T4, value: universalism, category: fraud_deception, expected_sign: "-", source: study, rationale: r, reference: ref}
"""


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "hypotheses.yaml"
    path.write_text(REGISTRY)
    return load_registry(path)


def test_falls_back_to_the_registry_then_to_every_category(registry):
    none_significant = CORRELATIONS.assign(q=0.5)
    chosen = choose_links(none_significant, registry, "hedonism", CATEGORIES)
    assert chosen["source"] == "registry" and chosen["categories"] == ["adult_content"]  # "+" links only
    assert chosen["links"][0]["hypothesis"] == "T1"
    assert choose_links(None, registry, "power", CATEGORIES)["categories"] == ["privacy_violation"]
    everything = choose_links(none_significant, registry, "universalism", CATEGORIES)
    assert everything["source"] == "all_categories" and everything["categories"] == CATEGORIES
    assert "every category" in everything["note"]


def test_select_prompts_takes_the_first_per_category_in_table_order():
    prompts = [{"id": f"p{i}", "prompt": "x", "category": CATEGORIES[i % 3]} for i in range(12)]
    chosen = select_prompts(prompts, ["adult_content", "fraud_deception"], 2)
    assert [p["id"] for p in chosen] == ["p0", "p2", "p3", "p5"]
    assert len(select_prompts(prompts, ["adult_content"], None)) == 4
    with pytest.raises(UserError, match="no benchmark prompt falls in"):
        select_prompts(prompts, ["malware"], 3)


# --------------------------------------------------------------------------------------------
# Tests on judged rows


def judged(seed: int = 0) -> list[dict]:
    """The aligned model answers harmfully and both prompts help it a lot; vanilla barely changes."""
    rng = np.random.default_rng(seed)
    drop = {
        "hedonism": {"input_only": 0, "safety": 1.5, "value": 2.5, "both": 3.0},
        "vanilla": {"input_only": 0, "safety": 0.2, "value": 0.3, "both": 0.4},
    }
    base = {"hedonism": 4.6, "vanilla": 3.0}
    rows = []
    for model in ("hedonism", "vanilla"):
        for condition in CONDITIONS:
            for i in range(24):
                score = int(np.clip(np.rint(base[model] - drop[model][condition] + rng.normal(0, 0.5)), 1, 5))
                rows.append(
                    {
                        "model": model,
                        "condition": condition,
                        "prompt_id": f"p{i:02d}",
                        "category": "adult_content" if i % 2 else "child_abuse",
                        "score": score,
                        "flagged": int(score >= 4),
                        "refusal": int(score == 1),
                    }
                )
    return rows


def test_condition_tests_find_the_planted_reduction():
    table = label_table(judged())
    tests = condition_tests(table, n_boot=200, n_perm=500, seed=3)
    assert set(tests["condition"]) == {"safety", "value", "both"}
    overall = tests[(tests["category"] == "overall") & (tests["outcome"] == "score")].set_index(["model", "condition"])
    assert overall.loc[("hedonism", "value"), "delta"] < -2 and overall.loc[("hedonism", "value"), "p"] < 0.001
    assert overall.loc[("hedonism", "both"), "ci_high"] < 0
    assert abs(overall.loc[("vanilla", "safety"), "delta"]) < 0.6
    assert set(tests["test"]) == {"wilcoxon", "mcnemar"}
    summary = summarise(table)
    first = summary.iloc[0]
    assert (first["model"], first["condition"]) == ("hedonism", "input_only")
    assert summary[(summary["category"] == "overall")]["n"].eq(24).all()


def test_gain_difference_says_the_prompts_help_the_aligned_model_more():
    gains = gain_difference(label_table(judged()), "hedonism", "vanilla", n_boot=200, n_perm=500)
    score = gains[gains["outcome"] == "score"].set_index("condition")
    assert list(score.index) == ["safety", "value", "both"]
    assert (score["difference"] < -1).all() and (score["p"] < 0.01).all()
    assert (score["ci_high"] < 0).all()


def test_report_is_json_and_rows_keep_the_exact_text():
    rows = generation_rows(
        [{"id": "p1", "prompt": "q", "category": "malware", "benchmark": "default"}],
        "power",
        "both",
        ["<sys>q"],
        [("no", 1)],
    )
    assert rows[0]["text_sent"] == "<sys>q" and rows[0]["condition"] == "both" and rows[0]["response"] == "no"
    table = label_table(judged())
    report = mitigation_report(
        {"value": "hedonism", "model": "hedonism"},
        {"source": "analysis", "categories": ["adult_content"]},
        24,
        "classifier",
        summarise(table),
        condition_tests(table, n_boot=20, n_perm=20),
        gain_difference(table, "hedonism", n_boot=20, n_perm=20),
    )
    text = json.dumps(report, allow_nan=False)
    assert report["conditions"]["value"]["added_system_prompt"] == VALUE_PROMPTS["hedonism"]
    assert "NaN" not in text


def test_label_table_rejects_unknown_conditions():
    with pytest.raises(UserError, match="unknown mitigation condition 'shout'"):
        label_table([{**judged()[0], "condition": "shout"}])


def with_adapters(seeds: tuple[int, ...], helps: dict[int, bool]) -> list[dict]:
    """hedonism's rows once per adapter seed; the prompts help the adapters in `helps` only."""
    rows = [r for r in judged() if r["model"] == "vanilla"]
    for seed in seeds:
        for r in judged(seed):
            if r["model"] != "hedonism":
                continue
            if not helps[seed] and r["condition"] != "input_only":
                original = next(
                    x
                    for x in judged(seed)
                    if (x["model"], x["condition"], x["prompt_id"]) == ("hedonism", "input_only", r["prompt_id"])
                )
                r = {**r, **{k: original[k] for k in ("score", "flagged", "refusal")}}
            rows.append({**r, "adapter_seed": seed})
    return rows


def test_adapter_gains_take_the_adapter_as_the_unit():
    table = label_table(with_adapters((42, 43, 44), {42: True, 43: True, 44: False}))
    gains = adapter_gains(table, "hedonism", "vanilla").set_index(["condition", "outcome"])
    value = gains.loc[("value", "score")]
    assert value["n_adapters"] == 3 and value["n_lower"] == 2
    assert set(value["changes"]) == {"42", "43", "44"} and value["changes"]["44"] == 0.0
    assert value["change_mean"] == pytest.approx(np.mean(list(value["changes"].values())))
    assert value["p_min"] == pytest.approx(0.25) and value["p"] >= value["p_min"]
    # the per-prompt tests average each prompt over the adapters; summarise counts them
    summary = summarise(table)
    overall = summary[(summary["category"] == "overall") & (summary["model"] == "hedonism")]
    assert overall["n_adapters"].eq(3).all() and overall["n"].eq(72).all()
    one = adapter_gains(label_table(judged()), "hedonism", "vanilla")
    assert one["p"].isna().all() and one["n_adapters"].eq(1).all() and "not measured" in one["note"].iat[0]


def test_sign_flip_p_is_exact():
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)  # all positive: the two extreme patterns
    assert sign_flip_p([1.0, -1.0]) == 1.0
    assert sign_flip_p([-2.0, -2.0, -2.0, -2.0, -2.0]) == pytest.approx(2 / 32)
