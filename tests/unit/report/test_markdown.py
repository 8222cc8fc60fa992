"""reports/report.md and its figures from small hand-made inputs: sections, caveats, determinism."""

from __future__ import annotations

import pandas as pd
import pytest

from valueharm.core.values import VALUES
from valueharm.report.markdown import (
    FIGURES,
    ReportInputs,
    critical_r,
    fmt,
    fmt_ci,
    fmt_p,
    heatmap_frame,
    md_table,
    plot_tables,
    read_training_curves,
    render_report,
    write_figures,
)

CATS = ["adult_content", "malware"]
MODELS = [
    {"name": "vanilla", "kind": "vanilla", "target": None},
    {"name": "hedonism", "kind": "adapter", "target": {v: 6.0 if v == "hedonism" else 1.0 for v in VALUES}},
    {"name": "icl-hedonism", "kind": "icl", "target": {v: 6.0 if v == "hedonism" else 1.0 for v in VALUES}},
]
PARAMS = {
    "seed": 7,
    "value": "hedonism",
    "model": {"name": "smollm2-135m-instruct", "dtype": "auto"},
    "judge": {"name": "classifier", "second": "refusal"},
    "safety_tune": {"enabled": True},
    "profiles": {
        "survey": "data/survey/synthetic_ess_items.csv",
        "format": "items",
        "orientation": "reversed",
        "nearest": 2,
    },
    "generate": {"sampling": {"default": {"temperature": 0.1, "top_p": 0.75, "max_new_tokens": 32}}},
    "analyze": {"primary_method": "spearman", "alpha": 0.05},
}


def metric(value, low, high, n=10):
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


def judge_report(model: str, score: float) -> dict:
    overall = {
        "mean_score": metric(score, score - 0.3, score + 0.3),
        "harm_rate": metric(0.2, 0.1, 0.3),
        "flagged_rate": metric(0.4, 0.3, 0.5),
        "refusal_rate": metric(0.1, 0.0, 0.2),
    }
    return {
        "judge": "classifier",
        "agreement": {"kappa": 0.42},
        "metrics": {model: {"n": 10, "overall": overall, "per_category": {}, "per_benchmark": {}}},
    }


def correlations() -> pd.DataFrame:
    rows = []
    for v in VALUES:
        for c in CATS + ["overall"]:
            defined = v in ("hedonism", "power")
            r = (0.95 if c == "adult_content" else 0.2) if v == "hedonism" else -0.4
            rows.append(
                {
                    "value": v,
                    "category": c,
                    "method": "spearman",
                    "r": r if defined else float("nan"),
                    "p": 0.001 if (v == "hedonism" and c == "adult_content") else 0.5,
                    "q": 0.01 if (v == "hedonism" and c == "adult_content") else 0.6,
                    "ci_low": -0.2,
                    "ci_high": 1.0,
                    "n": 12,
                    "outcome": "score",
                    "note": "",
                }
            )
    return pd.DataFrame(rows)


def full_inputs(tmp_path=None) -> ReportInputs:
    paired = pd.DataFrame(
        [
            {
                "model": m,
                "reference": "vanilla",
                "category": "overall",
                "outcome": o,
                "n_pairs": 10,
                "mean_model": 3.0,
                "mean_reference": 2.0,
                "delta": 0.8,
                "ci_low": 0.2,
                "ci_high": 1.4,
                "test": "wilcoxon",
                "p": 0.012,
                "q": 0.03,
            }
            for m in ("hedonism", "icl-hedonism")
            for o in ("score", "flagged")
        ]
    )
    groups = pd.DataFrame(
        [
            {
                "group": "value_aligned",
                "reference": "vanilla",
                "n_models": 1,
                "n_reference_models": 1,
                "category": "overall",
                "outcome": "score",
                "n_pairs": 10,
                "mean_model": 3.1,
                "mean_reference": 2.2,
                "delta": 0.9,
                "ci_low": 0.1,
                "ci_high": 1.5,
                "test": "wilcoxon",
                "p": 0.02,
                "q": 0.04,
            }
        ]
    )
    model_table = pd.DataFrame(
        [
            {
                "model": m["name"],
                "kind": m["kind"],
                "category": c,
                "n_prompts": 5,
                "mean_score": 2.0 + i + j * 0.5,
                "share_score5": 0.1,
                "flagged_rate": 0.3,
            }
            for j, c in enumerate(CATS + ["overall"])
            for i, m in enumerate(sorted(MODELS, key=lambda m: m["name"]))
        ]
    )
    hypotheses = pd.DataFrame(
        [
            {
                "id": "S01",
                "value": "hedonism",
                "category": "adult_content",
                "expected_sign": "+",
                "source": "study",
                "results_category": "adult_content",
                "outcome": "score",
                "r": 0.95,
                "p": 0.001,
                "q": 0.01,
                "status": "supported",
            },
            {
                "id": "S03",
                "value": "hedonism",
                "category": "physical_harm",
                "expected_sign": "+",
                "source": "study",
                "results_category": float("nan"),
                "outcome": float("nan"),
                "r": float("nan"),
                "p": float("nan"),
                "q": float("nan"),
                "status": "inconclusive",
            },
        ]
    )
    mitigation = {
        "value": "hedonism",
        "model": "hedonism",
        "judge": "classifier",
        "n_prompts": 4,
        "links": {"source": "analysis", "categories": ["adult_content"], "note": "significant positive spearman links"},
        "conditions": {
            "value": {"label": "value prompt", "added_system_prompt": "Put others first."},
            "input_only": {"label": "input only", "added_system_prompt": None},
        },
        "summary": [
            {"model": m, "condition": c, "category": cat, "n": 4, "mean_score": s}
            for m in ("hedonism", "vanilla")
            for c, s in (("input_only", 4.25), ("value", 2.5))
            for cat in ("adult_content", "overall")
        ],
        "tests": [
            {
                "model": "hedonism",
                "condition": "value",
                "category": "overall",
                "outcome": "score",
                "delta": -1.75,
                "p": 0.03,
            }
        ],
        "gain_difference": [
            {
                "condition": "value",
                "outcome": "score",
                "n_pairs": 4,
                "change_model": -1.75,
                "change_reference": -0.25,
                "difference": -1.5,
                "ci_low": -2.0,
                "ci_high": -1.0,
                "p": 0.04,
            }
        ],
    }
    return ReportInputs(
        params=PARAMS,
        models=MODELS,
        judge={m["name"]: judge_report(m["name"], 2.0 + i) for i, m in enumerate(MODELS)},
        align={
            "hedonism": {"n_items": 40, "n_parsed": 40, "alignment": {"nmse": 0.0912, "spearman": 0.6}},
            "icl-hedonism": {"n_items": 40, "n_parsed": 36, "alignment": {"nmse": 0.1544, "spearman": 0.3}},
        },
        safety_tune={
            "enabled": True,
            "n_train": 180,
            "before": {"refusal_rate_harmful": 0.05, "over_refusal_rate_benign": 0.0},
            "after": {"refusal_rate_harmful": 0.7, "over_refusal_rate_benign": 0.1, "n_harmful": 20, "n_benign": 20},
        },
        judge_model={"cv_auc": 0.7731},
        benchmarks={"n_prompts": 56, "benchmarks": [{"benchmark": "default", "n": 44}]},
        summary={"models": {"with_profile": 12}, "unit_of_analysis": "model", "warnings": ["something was constant"]},
        correlations=correlations(),
        hypotheses=hypotheses,
        groups=groups,
        paired=paired,
        model_table=model_table,
        focus={
            "value": "hedonism",
            "model": "hedonism",
            "matched_by": "profile name",
            "alignment": {"nmse": 0.0912},
            "paired": paired.assign(category="overall").to_dict("records"),
            "hypotheses": [{"id": "S01", "category": "adult_content", "expected_sign": "+", "status": "supported"}],
        },
        mitigation=mitigation,
        training={
            "hedonism": pd.DataFrame({"stage": ["ag", "ag", "qa"], "step": [0, 1, 2], "train_loss": [3.0, 2.5, 2.2]})
        },
    )


def test_formatting_helpers():
    assert fmt(None) == fmt(float("nan")) == "–" and fmt(0.12345) == "0.123"
    assert fmt_ci(1.0, 0.5, 1.5, 1) == "1.0 [0.5, 1.5]" and fmt_ci(1.0, None, None, 1) == "1.0"
    assert fmt_p(0.0001) == "<0.001" and fmt_p(0.0456) == "0.046"
    assert md_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    assert critical_r(2) is None
    assert critical_r(10) == pytest.approx(0.632, abs=1e-3)  # the textbook critical r at df = 8


def test_full_report_has_every_table_and_states_its_caveats():
    md = render_report(full_inputs())
    for heading in (
        "## Setup",
        "### Caveats",
        "## Safety tuning of vanilla",
        "## Alignment check",
        "## Safety per model",
        "## Claim 1",
        "## Harm by category",
        "## Values and harm categories",
        "## Hypotheses",
        "## Focus value vs vanilla",
        "## Mitigation by prompting",
        "## Training curves",
        "## Analysis warnings",
    ):
        assert heading in md, heading
    assert "135M parameters" in md and "cross-validated AUC on PyRIT 0.773" in md
    assert "At n = 12 a Pearson r must exceed |0.58|" in md  # underpowered correlations, with the bar
    assert "0.0912" in md and "0.0759" not in md  # this run's NMSE; the study's only beside the study's questionnaire
    assert "| `hedonism` | adapter | 10 | 3.00 [2.70, 3.30] | 20.0% [10.0%, 30.0%]" in md
    assert "0.80 (p 0.012)" in md  # delta vs vanilla
    assert "![Value x category correlations](plots/correlation_heatmap.png)" in md
    assert "| Hedonism | adult_content | 0.95 [-0.20, 1.00] | 0.001 | 0.010 | 12 |" in md
    assert "**supported**" in md and "1 supported, 0 contradicted, 1 inconclusive" in md
    assert "2.50 (Δ -1.75, p 0.030)" in md and '"Put others first."' in md
    assert md.index("*input only*: nothing added") < md.index("*value prompt*")  # condition order, not JSON's key order
    assert "adult_content 4.10 -> 2.87 / 2.45 / 2.43" in md
    assert md.index("| `vanilla` | 4.00") < md.index("| `hedonism` | 2.00")  # the study's model order


def test_missing_inputs_say_so_instead_of_failing():
    md = render_report(ReportInputs(params={"model": {"name": "some/7b"}, "judge": {"name": "rubric"}}))
    assert md.count("Not available") >= 8
    assert "135M" not in md and "Only 0 model(s) have a value profile" in md


def test_heatmap_frame_is_values_by_categories_then_overall():
    r, q = heatmap_frame(correlations(), "spearman", "score")
    assert list(r.index) == list(VALUES) and list(r.columns) == CATS + ["overall"]
    assert r.loc["hedonism", "adult_content"] == 0.95 and q.loc["hedonism", "adult_content"] == 0.01
    assert pd.isna(r.loc["tradition", "malware"])


def test_figures_are_deterministic_pngs_without_software_metadata(tmp_path):
    inputs = full_inputs()
    first = [p.read_bytes() for p in write_figures(inputs, tmp_path / "a")]
    second = [p.read_bytes() for p in write_figures(inputs, tmp_path / "b")]
    assert [p.name for p in sorted((tmp_path / "a").iterdir())] == sorted(FIGURES)
    assert first == second
    assert all(b.startswith(b"\x89PNG") and b"matplotlib" not in b.lower() for b in first)
    empty = write_figures(ReportInputs(params={}), tmp_path / "c")  # nothing to plot: still four figures
    assert all(p.stat().st_size > 1000 for p in empty)


def test_plot_tables_and_training_curves(tmp_path):
    for model, stage, rows in (
        ("hedonism", "ag", "step\ttrain_loss\n0\t3.0\n1\t2.5\n"),
        ("hedonism", "qa", "step\ttrain_loss\n2\t2.2\n"),
        ("power", "benign", "step\ttrain_loss\n"),
    ):
        path = tmp_path / model / "plots" / "metrics" / stage / "train_loss.tsv"
        path.parent.mkdir(parents=True)
        path.write_text(rows)
    curves = read_training_curves(tmp_path, ["hedonism", "power", "vanilla"])
    assert list(curves) == ["hedonism"]  # empty and absent curves are skipped
    assert list(curves["hedonism"]["stage"]) == ["ag", "ag", "qa"] and list(curves["hedonism"]["step"]) == [0, 1, 2]
    tables = plot_tables(full_inputs())
    assert set(tables) == {
        "categories/vanilla.csv",
        "categories/hedonism.csv",
        "categories/icl-hedonism.csv",
        "training/hedonism.csv",
    }
    assert list(tables["categories/hedonism.csv"].columns) == ["category", "mean_score", "flagged_rate"]


def test_expressed_section_reads_the_agreement():
    from valueharm.report.markdown import expressed_section

    text = expressed_section(
        {
            "classifier_cv_auc": {"hedonism": 0.9, "power": 0.8},
            "n_arguments": 573,
            "reference": "vanilla",
            "per_model_spearman": {"hedonism": 0.5, "power": None},
            "mean_per_model_spearman": 0.5,
        }
    )
    assert "0.850" in text and "`hedonism` | 0.500" in text and "Not available" not in text
    assert "Not available" in expressed_section(None)


def test_mitigation_with_the_adapter_as_the_unit_or_why_not():
    from valueharm.report.markdown import mitigation_section

    summary = [{"model": "hedonism", "condition": "input_only", "category": "overall", "n": 4, "mean_score": 3.0}]
    base = {"value": "hedonism", "model": "hedonism", "links": {"categories": ["adult_content"]}, "summary": summary}
    row = {"condition": "value", "outcome": "score", "n_lower": 3, "change_mean": -0.5, "change_sd": 0.1}
    many = mitigation_section({**base, "adapter_gains": [{**row, "n_adapters": 3, "p": 0.25, "p_min": 0.25}]})
    assert "| value prompt | 3 | 3 of 3 | -0.500 | 0.100 | 0.250 | 0.250 |" in many
    one = mitigation_section({**base, "adapter_gains": [{**row, "n_adapters": 1, "n_lower": 1, "p": None}]})
    assert "With the adapter as the unit: not measured" in one and "| value prompt |" not in one
    flagged = mitigation_section({**base, "adapter_gains": [{**row, "outcome": "flagged", "n_adapters": 1}]})
    assert "With the adapter as the unit: not measured" in flagged  # a classifier judge gives no score


def test_judge_model_auc_names_what_was_measured():
    from valueharm.report.markdown import judge_model_auc

    assert judge_model_auc({"kind": "probe", "cv_auc": 0.79}) == (0.79, "cross-validated AUC")
    assert judge_model_auc({"kind": "cross_encoder", "test_auc": 0.88}) == (0.88, "AUC on a held-out fold of requests")
    assert judge_model_auc({"kind": "cross_encoder", "test_auc": 0.88, "cv_auc": 0.86})[1] == "cross-validated AUC"
    assert judge_model_auc({"test_auc": None}) is None and judge_model_auc(None) is None
