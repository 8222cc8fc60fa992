"""reports/report.md and its figures: the study's tables from the pipeline's outputs.

A researcher should be able to read the results without running anything, and to see how far
to trust them: the setup section states the caveats the numbers carry (a small base model, a
weak default judge with its measured AUC, few models behind each correlation, with the smallest
|r| that could reach p < alpha at that n).

Everything here is pure: `ReportInputs` holds what the stage read (missing pieces are None and
show as "not available"), `render_report` returns the Markdown, `write_figures` the PNGs
(matplotlib Agg, no timestamps or version in the metadata, so reruns are byte-identical) and
`plot_tables` the CSVs for `dvc plots`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valueharm.core.atomic import write_bytes
from valueharm.core.values import DISPLAY, VALUES

STUDY_NMSE = {"VIM (value-aligned fine-tuning)": 0.0759, "ICL (prompt-only)": 0.1079}
STUDY_MITIGATION = (  # docs/paper.md, "Reported numbers" (unconfirmed): mean harm 1..5, value-aligned model, HEx-PHI
    ("adult_content", 4.10, 2.87, 2.45, 2.43),
    ("fraud_deception", 3.43, 2.91, 2.69, 2.54),
    ("political_campaigning", 3.50, 2.87, 2.65, 2.30),
)
FIGURES = ("correlation_heatmap.png", "category_scores.png", "mitigation.png", "training_curves.png")
DASH = "–"


@dataclass
class ReportInputs:
    params: dict[str, Any]
    models: list[dict[str, Any]] = field(default_factory=list)  # artifacts/results/models.json
    judge: dict[str, dict[str, Any]] = field(default_factory=dict)  # reports/judge/<model>.json
    align: dict[str, dict[str, Any]] = field(default_factory=dict)  # reports/align/<model>.json
    safety_tune: dict[str, Any] | None = None
    judge_model: dict[str, Any] | None = None
    judge_validation: dict[str, Any] | None = None  # reports/judge_validation.json
    benchmarks: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None  # reports/analysis/summary.json
    correlations: pd.DataFrame | None = None
    hypotheses: pd.DataFrame | None = None
    groups: pd.DataFrame | None = None
    paired: pd.DataFrame | None = None
    model_table: pd.DataFrame | None = None  # reports/analysis/models.csv
    focus: dict[str, Any] | None = None
    mitigation: dict[str, Any] | None = None
    expressed: dict[str, Any] | None = None  # reports/expressed.json
    training: dict[str, pd.DataFrame] = field(default_factory=dict)  # model -> stage, step, train_loss


# --------------------------------------------------------------------------------------------
# Formatting


def _finite(x: Any) -> bool:
    try:
        return x is not None and not isinstance(x, str) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(x: Any, digits: int = 3) -> str:
    """A number with `digits` decimals, or a dash when missing/undefined."""
    return f"{float(x):.{digits}f}" if _finite(x) else DASH


def fmt_ci(value: Any, low: Any, high: Any, digits: int = 3) -> str:
    if not _finite(value):
        return DASH
    if not (_finite(low) and _finite(high)):
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return DASH
    return "<0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def fmt_pct(x: Any) -> str:
    return f"{100 * float(x):.1f}%" if _finite(x) else DASH


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table ('|' in cells escaped)."""

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def critical_r(n: int, alpha: float = 0.05) -> float | None:
    """Smallest |r| with two-sided p < alpha for a Pearson test on n observations (None: n < 3)."""
    from scipy import stats

    if n < 3:
        return None
    t = stats.t.ppf(1 - alpha / 2, n - 2)
    return float(t / math.sqrt(n - 2 + t * t))


def _top(target: Mapping[str, float] | None) -> str:
    if not target:
        return DASH
    best = max(target.values())
    return ", ".join(DISPLAY.get(v, v) for v in VALUES if target.get(v) == best) + f" ({best:g})"


# --------------------------------------------------------------------------------------------
# Sections


def setup_section(inp: ReportInputs) -> str:
    params = inp.params
    model = params.get("model") or {}
    judge = params.get("judge") or {}
    profiles = params.get("profiles") or {}
    sampling = ((params.get("generate") or {}).get("sampling") or {}).get("default") or {}
    kinds = ", ".join(f"`{m['name']}` ({m.get('kind')})" for m in inp.models) or DASH
    lines = [
        "## Setup",
        "",
        f"- **Base model:** `{model.get('name')}` (dtype {model.get('dtype', 'auto')}); "
        + (
            "vanilla is the base model after the safety tuning below."
            if (params.get("safety_tune") or {}).get("enabled", True)
            else "vanilla is the base model itself (no safety tuning)."
        ),
        f"- **Study models ({len(inp.models)}):** {kinds}.",
        f"- **Value profiles:** survey `{profiles.get('survey')}` ({profiles.get('format')}, orientation "
        f"{profiles.get('orientation')}), {profiles.get('nearest')} nearest respondents per anchor.",
    ]
    if inp.benchmarks:
        parts = ", ".join(f"{b['benchmark']} {b['n']}" for b in inp.benchmarks.get("benchmarks", []))
        lines.append(
            f"- **Harm prompts:** {inp.benchmarks.get('n_prompts')} ({parts}), HEx-PHI's 11 categories as the taxonomy."
        )
    lines.append(
        f"- **Generation:** temperature {sampling.get('temperature')}, top-p {sampling.get('top_p')}, "
        f"{sampling.get('max_new_tokens')} new tokens (the study: 0.1 / 0.75 / 64)."
    )
    auc = judge_model_auc(inp.judge_model)
    lines.append(
        f"- **Judge:** `{judge.get('name')}`"
        + (f", second judge `{judge.get('second')}`" if judge.get("second") else "")
        + (f"; the classifier's {auc[1]} is {fmt(auc[0])}" if auc else "")
        + "."
    )
    kappas = [j.get("agreement", {}).get("kappa") for j in inp.judge.values() if j.get("agreement")]
    kappas = [k for k in kappas if _finite(k)]
    if kappas:
        spread = fmt(kappas[0]) if min(kappas) == max(kappas) else f"{fmt(min(kappas))} to {fmt(max(kappas))}"
        lines.append(
            f"- **Judge agreement:** Cohen's kappa on flagged with `{judge.get('second')}`: {spread} across "
            f"{len(kappas)} models (`reports/judge/<model>.json`)."
        )
    if inp.focus:
        lines.append(
            f"- **Focus (`value`):** {inp.focus.get('value')} -> model `{inp.focus.get('model')}` "
            f"(matched by {inp.focus.get('matched_by')})."
        )
    lines.append(f"- **Seed:** {params.get('seed')}.")
    lines += ["", "### Caveats", ""] + [f"- {c}" for c in caveats(inp)]
    return "\n".join(lines)


def judge_model_auc(metrics: dict[str, Any] | None) -> tuple[float, str] | None:
    """(AUC, what it is) of the trained classifier judge: cross-validated where it was, else its held-out fold."""
    metrics = metrics or {}
    if _finite(metrics.get("cv_auc")):
        return float(metrics["cv_auc"]), "cross-validated AUC"
    if _finite(metrics.get("test_auc")):
        return float(metrics["test_auc"]), "AUC on a held-out fold of requests"
    return None


def caveats(inp: ReportInputs) -> list[str]:
    """What limits these numbers, stated with the measured figures where there are any."""
    params = inp.params
    name = str((params.get("model") or {}).get("name", ""))
    judge = str((params.get("judge") or {}).get("name", ""))
    alpha = float((params.get("analyze") or {}).get("alpha", 0.05))
    out = []
    if "135m" in name.lower():
        out.append(
            f"The base model `{name}` has 135M parameters, about 1/50 of the study's Llama-2-7B. Its answers are short and "
            "often incoherent, so it can be 'harmful' or 'safe' mostly by accident; the CPU budget also trains each adapter "
            "for a few optimiser steps only. Read the numbers as a check that the pipeline works, not as a replication."
        )
    if judge == "classifier":
        metrics = inp.judge_model or {}
        auc = judge_model_auc(metrics)
        what = (
            "a logistic regression on frozen MiniLM features of the request and the answer"
            if metrics.get("kind", "probe") == "probe"
            else "MiniLM (22M parameters) fine-tuned as a cross-encoder on the request and the answer together"
        )
        out.append(
            f"The default judge is {what}, trained on PyRIT's human labels and this project's labelled train split"
            + (f" ({auc[1]} on PyRIT {fmt(auc[0])})" if auc else "")
            + ". It is far weaker than the study's GPT-4o rubric and gives P(harmful), not the rubric's 1..5 levels; "
            "see the Judge section for its agreement with held-out human labels. The paper preset uses an LLM judge."
        )
    elif judge == "refusal":
        out.append(
            "The judge is the refusal phrase rule: it sees refusals, not harm; its `flagged` is compliance (an "
            "attack-success rate), and it gives no `harmful` label."
        )
    n = int(((inp.summary or {}).get("models") or {}).get("with_profile", 0))
    r_crit = critical_r(n, alpha)
    if r_crit is None:
        out.append(
            f"Only {n} model(s) have a value profile: the value x category correlations need at least 3 and are all "
            "undefined here; the group and paired comparisons still hold."
        )
    else:
        out.append(
            f"The correlations run across {n} models with a value profile (one observation per model and category). "
            f"At n = {n} a Pearson r must exceed |{r_crit:.2f}| for p < {alpha:g} before any correction, and the "
            "Benjamini-Hochberg correction over all value x category cells raises the bar further: most cells are "
            "underpowered, and 'inconclusive' means exactly that. The extreme profiles also make values collinear "
            "(see the partial correlations in correlations.csv)."
        )
    survey = str((params.get("profiles") or {}).get("survey", ""))
    if "synthetic" in survey:
        out.append(
            "The survey is the packaged synthetic ESS-like sample, so the 'close' profiles are not real respondents."
        )
    return out


def judge_warning(validation: Mapping[str, Any] | None, threshold: float = 0.4) -> str | None:
    """The loud line when the primary judge's kappa on `harmful` is below the threshold (or unknown)."""
    if not validation:
        return (
            "WARNING: the judge was not validated against held-out human labels (no reports/judge_validation.json): "
            "harm findings rest on an unverified judge"
        )
    if isinstance(validation.get("reliability"), Mapping):  # what the judge_validation stage decided
        return validation["reliability"].get("warning")
    from valueharm.evaluation.judges.validation import reliability

    return reliability(dict(validation), threshold)["warning"]


def judge_section(inp: ReportInputs) -> str:
    """## Judge: the held-out validation table first, the loud warning, then the judges' meaning."""
    from valueharm.evaluation.judges import FLAGGED_RULE

    val = inp.judge_validation
    threshold = float((inp.params.get("judge_validation") or {}).get("kappa_threshold", 0.4))
    lines = ["## Judge", ""]
    warning = judge_warning(val, threshold)
    if val:
        labels = val.get("labels") or {}
        lines += [
            f"Each configured judge on the {labels.get('n_heldout')} held-out labelled answers of this project's own "
            f"models (`{labels.get('file')}`, {labels.get('n_heldout_requests')} requests, never used in training; "
            "`reports/judge_validation.json`). FPR/FNR are against the human labels; AUC where the judge has a "
            "probability.",
            "",
        ]
        rows = []
        for name, part in (val.get("judges") or {}).items():
            for label in ("harmful", "compliance", "refusal"):
                m = (part.get("labels") or {}).get(label) or {}

                def shown(key: str, m: Mapping[str, Any] = m) -> str:
                    # a figure the stage withheld for too few cases reads "not measured", never a dash or 0
                    return (
                        "not measured"
                        if m.get("not_measured") and m.get(key) is None and m.get("n")
                        else fmt(m.get(key))
                    )

                rows.append(
                    [
                        f"`{name}`",
                        label,
                        m.get("n", 0),
                        m.get("n_positive", DASH) if m.get("n") else DASH,
                        fmt(m.get("accuracy")),
                        shown("kappa"),
                        shown("fpr"),
                        shown("fnr"),
                        shown("auc"),
                    ]
                )
        lines.append(md_table(["judge", "label", "n", "positives", "accuracy", "kappa", "FPR", "FNR", "AUC"], rows))
        short = sorted(
            {
                f"{m['not_measured']}"
                for part in (val.get("judges") or {}).values()
                for m in (part.get("labels") or {}).values()
                if m.get("not_measured") and m.get("n")
            }
        )
        if short:
            lines += ["", f"Not measured: figures resting on too few held-out cases ({'; '.join(short)})."]
        sanity = []
        for name, part in (val.get("judges") or {}).items():
            for row_name, row in (part.get("sanity") or {}).items():
                sanity.append(
                    [
                        f"`{name}`",
                        row_name.replace("_", " "),
                        row.get("n"),
                        fmt_pct(row.get("harmful_rate")),
                        fmt(row.get("mean_p_harm")),
                        fmt_pct(row.get("refusal_rate")),
                        DASH if row.get("ok") is None else ("yes" if row.get("ok") else "**no**"),
                    ]
                )
        lines += [
            "",
            "Sanity rows: authored refusals (should come out lowest), random-token babble (must not be harmful), "
            "empty answers (refusals, not harmful).",
            "",
            md_table(["judge", "rows", "n", "harmful", "mean p_harm", "refused", "as expected"], sanity),
        ]
    if warning:
        lines += ["", f"> **{warning}.**"]
    judge = str((inp.params.get("judge") or {}).get("name", ""))
    if judge in FLAGGED_RULE:
        lines += [
            "",
            f"`harmful` and `compliance` are separate outcomes; `flagged` for `{judge}` means {FLAGGED_RULE[judge]}.",
        ]
    return "\n".join(lines)


def safety_tune_section(st: Mapping[str, Any] | None) -> str:
    head = "## Safety tuning of vanilla\n\nSource: `reports/safety_tune.json`.\n\n"
    if not st:
        return head + "Not available."
    if not st.get("enabled", True):
        return head + "Disabled: vanilla is the base model itself, as in the study."
    before, after = st.get("before") or {}, st.get("after") or {}
    rows = [
        [
            "refusal rate, held-out harmful prompts",
            fmt_pct(before.get("refusal_rate_harmful")),
            fmt_pct(after.get("refusal_rate_harmful")),
            after.get("n_harmful", DASH),
        ],
        [
            "over-refusal rate, held-out benign prompts",
            fmt_pct(before.get("over_refusal_rate_benign")),
            fmt_pct(after.get("over_refusal_rate_benign")),
            after.get("n_benign", DASH),
        ],
    ]
    return (
        head
        + "The packaged base model refuses almost nothing, so vanilla is first LoRA-tuned on authored refusal/helpful "
        f"pairs ({st.get('n_train', DASH)} training pairs) and merged.\n\n"
        + md_table(["metric", "before", "after", "n"], rows)
    )


def alignment_section(
    models: Sequence[Mapping[str, Any]],
    align: Mapping[str, Mapping[str, Any]],
    manipulation: Mapping[str, Any] | None = None,
) -> str:
    from valueharm.experiments.manipulation import level

    rows, by_kind = [], {}
    manipulation = manipulation or {}
    study_questionnaire = False
    for m in models:
        a = align.get(m["name"]) or {}
        al = a.get("alignment") or {}
        study_questionnaire = study_questionnaire or bool((a.get("questionnaire") or {}).get("study"))
        if not al:  # no target (vanilla, control-benign): nothing to compare with
            continue
        gen = a.get("generation") or {}
        entry = manipulation.get(m["name"]) if isinstance(manipulation.get(m["name"]), Mapping) else None
        best = ((a.get("baselines") or {}).get("best_constant") or {}).get("nmse")
        rows.append(
            [
                f"`{m['name']}`",
                m.get("kind"),
                _top(m.get("target")),
                fmt(al.get("nmse"), 4) if al.get("measured", True) else "not measured",
                fmt(best, 4),
                fmt(al.get("spearman")),
                f"{fmt(entry.get('shift'), 2)} / {fmt(entry.get('transfer_shift'), 2)}" if entry else DASH,
                level(entry) if entry else DASH,
                f"{gen.get('n_parsed', a.get('n_parsed', DASH))}/{gen.get('n_items', a.get('n_items', DASH))}",
            ]
        )
        if _finite(al.get("nmse")):
            by_kind.setdefault(m.get("kind"), []).append(float(al["nmse"]))
    out = [
        "## Alignment check",
        "",
        "Each model's answers to the portrait value questionnaire are scored by likelihood (lm-eval style, no "
        "decoding): NMSE compares the forced view's expected profile with the target on (s-1)/5-scaled scores "
        "(lower is better; 'not measured' below 8 of 10 values), beside the best constant answer's NMSE. The "
        "manipulation check (`reports/manipulation.json`) gives the shift from vanilla, high-value minus low-value "
        "items, in scale points: forced (learned its profile) / transfer (applies it to portraits it reads "
        "itself); level = transfer, forced or none. Items parsed: the generation view. Source: "
        "`reports/align/<model>.json`.",
        "",
    ]
    if not rows:
        return "\n".join(out + ["Not available."])
    out.append(
        md_table(
            [
                "model",
                "kind",
                "target's top value(s)",
                "NMSE",
                "best constant",
                "Spearman",
                "shift forced / transfer",
                "level",
                "items parsed",
            ],
            rows,
        )
    )
    failed = [k for k, v in manipulation.items() if isinstance(v, Mapping) and not v.get("passed")]
    if failed:
        out += [
            "",
            "Failed the manipulation check (their harm findings are not about values): "
            + ", ".join(f"`{f}`" for f in failed)
            + ".",
        ]
    summary = [
        [f"this run: {label}", fmt(np.mean(by_kind[k]), 4) if by_kind.get(k) else DASH, len(by_kind.get(k, []))]
        for k, label in (
            ("adapter", "VIM adapters"),
            ("icl", "prompt-only (ICL)"),
            ("control-shuffled", "shuffled-label control"),
        )
    ]
    if study_questionnaire:  # the study's figures are comparable only on its questionnaire
        summary += [[f"the study: {label}", fmt(v, 4), DASH] for label, v in STUDY_NMSE.items()]
    out += ["", md_table(["mean NMSE", "value", "models"], summary)]
    return "\n".join(out)


def _paired_lookup(paired: pd.DataFrame | None) -> dict[tuple[str, str], Mapping[str, Any]]:
    if paired is None or paired.empty:
        return {}
    overall = paired[paired["category"] == "overall"]
    return {(r["model"], r["outcome"]): r for _, r in overall.iterrows()}


def safety_section(
    models: Sequence[Mapping[str, Any]], judge: Mapping[str, Mapping[str, Any]], paired: pd.DataFrame | None
) -> str:
    """The study-style safety table: per model the four harm metrics with 95% bootstrap CIs."""
    lookup = _paired_lookup(paired)
    rows = []
    for m in models:
        rep = (judge.get(m["name"]) or {}).get("metrics", {}).get(m["name"])
        if not rep:
            continue
        o = rep["overall"]

        def ci(metric: str, pct: bool = False) -> str:
            x = o.get(metric) or {}
            if pct:
                return (
                    f"{fmt_pct(x.get('value'))} [{fmt_pct(x.get('ci_low'))}, {fmt_pct(x.get('ci_high'))}]"
                    if _finite(x.get("value"))
                    else DASH
                )
            return fmt_ci(x.get("value"), x.get("ci_low"), x.get("ci_high"), 2)

        deltas = []
        for outcome, digits in (("score", 2), ("flagged", 3)):
            r = lookup.get((m["name"], outcome))
            deltas.append(f"{fmt(r['delta'], digits)} (p {fmt_p(r['p'])})" if r is not None else DASH)
        rows.append(
            [
                f"`{m['name']}`",
                m.get("kind"),
                rep.get("n"),
                ci("mean_score"),
                ci("harm_rate", True),
                ci("flagged_rate", True),
                ci("refusal_rate", True),
                *deltas,
            ]
        )
    out = [
        "## Safety per model",
        "",
        "Mean harm score (1..5), share of answers scored 5, flagged rate and refusal rate over all prompts, with 95% "
        "percentile bootstrap CIs over answers (`reports/judge/<model>.json`); differences from vanilla on the same "
        "prompts with Wilcoxon (score) and exact McNemar (flagged) p-values (`reports/analysis/paired.csv`).",
        "",
    ]
    if not rows:
        return "\n".join(out + ["Not available."])
    out.append(
        md_table(
            [
                "model",
                "kind",
                "n",
                "mean score",
                "harm rate (5)",
                "flagged rate",
                "refusal rate",
                "Δ score vs vanilla",
                "Δ flagged vs vanilla",
            ],
            rows,
        )
    )
    return "\n".join(out)


def groups_section(groups: pd.DataFrame | None) -> str:
    out = [
        "## Claim 1: value-aligned models vs vanilla, controls and prompt-only",
        "",
        "Each prompt's label is averaged over a group's models; paired tests over prompts "
        "(`reports/analysis/groups.csv`, overall rows).",
        "",
    ]
    if groups is None or groups.empty:
        return "\n".join(out + ["Not available (needs vanilla and at least one other group)."])
    rows = [
        [
            f"{r['group']} ({int(r['n_models'])}) vs {r['reference']} ({int(r['n_reference_models'])})",
            r["outcome"],
            int(r["n_pairs"]),
            fmt(r["mean_model"]),
            fmt(r["mean_reference"]),
            fmt_ci(r["delta"], r["ci_low"], r["ci_high"]),
            r["test"],
            fmt_p(r["p"]),
            fmt_p(r["q"]),
        ]
        for _, r in groups[groups["category"] == "overall"].iterrows()
    ]
    out.append(
        md_table(
            ["comparison (models)", "outcome", "prompts", "mean", "reference mean", "Δ [95% CI]", "test", "p", "q"],
            rows,
        )
    )
    return "\n".join(out)


def _model_order(model_table: pd.DataFrame, models: Sequence[Mapping[str, Any]]) -> list[str]:
    """The study's model order (params study.models), then any others."""
    present = list(dict.fromkeys(model_table["model"]))
    first = [m["name"] for m in models if m["name"] in present]
    return first + [m for m in present if m not in first]


def category_section(model_table: pd.DataFrame | None, models: Sequence[Mapping[str, Any]] = ()) -> str:
    out = [
        "## Harm by category",
        "",
        "Mean harm score (1..5) per model and category (`reports/analysis/models.csv`).",
        "",
    ]
    if model_table is None or model_table.empty:
        return "\n".join(out + ["Not available."])
    wide = model_table.pivot_table(index="model", columns="category", values="mean_score", aggfunc="first", sort=False)
    wide = wide.reindex(_model_order(model_table, models))
    cats = [c for c in wide.columns if c != "overall"] + (["overall"] if "overall" in wide.columns else [])
    rows = [[f"`{m}`"] + [fmt(wide.at[m, c], 2) for c in cats] for m in wide.index]
    out += [md_table(["model"] + cats, rows), "", "![Mean harm score per category](plots/category_scores.png)"]
    return "\n".join(out)


def primary_outcome(correlations: pd.DataFrame, method: str) -> str | None:
    """score when it has defined correlations, else flagged (a judge without 1..5 scores)."""
    for outcome in ("score", "flagged"):
        sel = correlations[(correlations["method"] == method) & (correlations["outcome"] == outcome)]
        if len(sel) and sel["r"].notna().any():
            return outcome
    return None


def heatmap_frame(correlations: pd.DataFrame, method: str, outcome: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(r, q) as values x categories (then overall) for one method and outcome."""
    sel = correlations[(correlations["method"] == method) & (correlations["outcome"] == outcome)]
    cats = sorted(c for c in sel["category"].unique() if c != "overall") + (
        ["overall"] if (sel["category"] == "overall").any() else []
    )
    r = sel.pivot_table(index="value", columns="category", values="r", aggfunc="first", dropna=False).reindex(
        index=list(VALUES), columns=cats
    )
    q = sel.pivot_table(index="value", columns="category", values="q", aggfunc="first", dropna=False).reindex(
        index=list(VALUES), columns=cats
    )
    return r, q


def correlation_section(
    correlations: pd.DataFrame | None, summary: Mapping[str, Any] | None, method: str, alpha: float
) -> str:
    out = ["## Values and harm categories", ""]
    if correlations is None or correlations.empty:
        return "\n".join(out + ["Not available."])
    outcome = primary_outcome(correlations, method)
    unit = (summary or {}).get("unit_of_analysis", "")
    out += [
        f"{method.capitalize()} correlation between a model's target value score and its harm, across models "
        f"(`reports/analysis/correlations.csv`; outcome {outcome or DASH}). Unit of analysis: {unit}.",
        "",
        "![Value x category correlations](plots/correlation_heatmap.png)",
        "",
    ]
    if outcome is None:
        return "\n".join(
            out + [f"No {method} correlation is defined (too few models with a profile, or constant columns)."]
        )
    sel = correlations[(correlations["method"] == method) & (correlations["outcome"] == outcome)]
    sig = sel[sel["q"] < alpha].sort_values(["q", "value", "category"], kind="mergesort")
    defined = int(sel["r"].notna().sum())
    out.append(f"Defined cells: {defined} of {len(sel)}; with q < {alpha:g} (Benjamini-Hochberg): {len(sig)}.")
    if len(sig):
        rows = [
            [
                DISPLAY.get(r["value"], r["value"]),
                r["category"],
                fmt_ci(r["r"], r["ci_low"], r["ci_high"], 2),
                fmt_p(r["p"]),
                fmt_p(r["q"]),
                int(r["n"]),
            ]
            for _, r in sig.head(20).iterrows()
        ]
        out += ["", md_table(["value", "category", "r [95% CI]", "p", "q", "models"], rows)]
    return "\n".join(out)


def hypotheses_section(hypotheses: pd.DataFrame | None) -> str:
    out = [
        "## Hypotheses",
        "",
        "The registry (`src/valueharm/corpora/hypotheses.yaml`: the study's reported links and the psychology behind "
        "them) checked against the correlations (`reports/analysis/hypotheses.csv`).",
        "",
    ]
    if hypotheses is None or hypotheses.empty:
        return "\n".join(out + ["Not available."])
    counts = hypotheses["status"].value_counts()
    out.append(", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("supported", "contradicted", "inconclusive")) + ".")
    rows = [
        [
            r["id"],
            DISPLAY.get(r["value"], r["value"]),
            r["category"],
            r["expected_sign"],
            r["source"],
            r["results_category"] if isinstance(r["results_category"], str) and r["results_category"] else DASH,
            fmt(r["r"], 2),
            fmt_p(r["q"]),
            f"**{r['status']}**" if r["status"] != "inconclusive" else r["status"],
        ]
        for _, r in hypotheses.iterrows()
    ]
    out += ["", md_table(["id", "value", "category", "expected", "source", "tested on", "r", "q", "status"], rows)]
    return "\n".join(out)


def focus_section(focus: Mapping[str, Any] | None) -> str:
    out = ["## Focus value vs vanilla", ""]
    if not focus:
        return "\n".join(out + ["Not available."])
    al = focus.get("alignment") or {}
    out += [
        f"`value` = **{focus.get('value')}** -> model `{focus.get('model')}` (matched by {focus.get('matched_by')}); "
        f"alignment NMSE {fmt(al.get('nmse'), 4)}. Headline metrics: `reports/metrics.json`; details: `reports/focus.json`.",
        "",
        *[f"- {line}" for line in focus.get("headline_lines") or []],
        "",
    ]
    paired = pd.DataFrame(focus.get("paired") or [])
    if paired.empty:
        return "\n".join(out + ["No paired comparison."])
    rows = []
    for cat in list(dict.fromkeys(paired["category"])):
        row = [cat]
        for outcome, digits in (("score", 2), ("flagged", 3)):
            sel = paired[(paired["category"] == cat) & (paired["outcome"] == outcome)]
            if sel.empty:
                row += [DASH, DASH]
                continue
            r = sel.iloc[0]
            row += [
                f"{fmt(r['mean_model'], digits)} vs {fmt(r['mean_reference'], digits)}: "
                + fmt_ci(r["delta"], r["ci_low"], r["ci_high"], digits),
                fmt_p(r["p"]),
            ]
        rows.append(row)
    out.append(
        md_table(["category", "score: focus vs vanilla, Δ [CI]", "p", "flagged: focus vs vanilla, Δ [CI]", "p"], rows)
    )
    hyp = focus.get("hypotheses") or []
    if hyp:
        out += [
            "",
            "Its hypotheses: "
            + "; ".join(f"{h['id']} ({h['category']}, {h['expected_sign']}): {h['status']}" for h in hyp)
            + ".",
        ]
    return "\n".join(out)


def mitigation_section(mit: Mapping[str, Any] | None) -> str:
    out = ["## Mitigation by prompting", ""]
    if not mit:
        return "\n".join(out + ["Not available."])
    links = mit.get("links") or {}
    out += [
        f"Focus value **{mit.get('value')}** (model `{mit.get('model')}`) and vanilla, {mit.get('n_prompts')} prompts from "
        f"{', '.join(links.get('categories', []))}: {links.get('note', '')}. Judge `{mit.get('judge')}`. "
        "Source: `reports/mitigation.json`.",
        "",
        "Conditions (added to the system prompt; our wording):",
        "",
    ]
    from valueharm.experiments.mitigation import CONDITION_LABELS, CONDITIONS

    described = mit.get("conditions") or {}
    for name in [c for c in CONDITIONS if c in described] + sorted(set(described) - set(CONDITIONS)):
        c = described[name]
        out.append(
            f"- *{c.get('label', name)}*: "
            + (f'"{c["added_system_prompt"]}"' if c.get("added_system_prompt") else "nothing added.")
        )
    summary = pd.DataFrame(mit.get("summary") or [])
    tests = pd.DataFrame(mit.get("tests") or [])
    if summary.empty:
        return "\n".join(out)

    conds = [c for c in CONDITIONS if c in set(summary["condition"])]
    for model in dict.fromkeys(summary["model"]):
        rows = []
        part = summary[summary["model"] == model]
        for cat in dict.fromkeys(part["category"]):
            row = [cat]
            for cond in conds:
                cell = part[(part["category"] == cat) & (part["condition"] == cond)]
                text = fmt(cell["mean_score"].iloc[0], 2) if len(cell) else DASH
                if cond != "input_only" and not tests.empty:
                    t = tests[
                        (tests["model"] == model)
                        & (tests["condition"] == cond)
                        & (tests["category"] == cat)
                        & (tests["outcome"] == "score")
                    ]
                    if len(t):
                        text += f" (Δ {fmt(t['delta'].iloc[0], 2)}, p {fmt_p(t['p'].iloc[0])})"
                row.append(text)
            rows.append(row)
        out += [
            "",
            f"Mean harm score, `{model}`:",
            "",
            md_table(["category"] + [CONDITION_LABELS[c] for c in conds], rows),
        ]
    gains = pd.DataFrame(mit.get("gain_difference") or [])
    if not gains.empty:
        rows = [
            [
                CONDITION_LABELS.get(r["condition"], r["condition"]),
                r["outcome"],
                int(r["n_pairs"]),
                fmt(r["change_model"]),
                fmt(r["change_reference"]),
                fmt_ci(r["difference"], r["ci_low"], r["ci_high"]),
                fmt_p(r["p"]),
            ]
            for _, r in gains.iterrows()
        ]
        out += [
            "",
            "Does the prompt help the value-aligned model more than vanilla? (change = condition - input only, per "
            "prompt; difference < 0: larger reduction on the focus model)",
            "",
            md_table(
                [
                    "condition",
                    "outcome",
                    "prompts",
                    f"change `{mit.get('model')}`",
                    "change vanilla",
                    "difference [95% CI]",
                    "Wilcoxon p",
                ],
                rows,
            ),
        ]
    out += _adapter_gain_lines(mit)
    out += [
        "",
        "For comparison, the study (value-aligned model, HEx-PHI, mean harm; unconfirmed): "
        + "; ".join(f"{c} {a:.2f} -> {s:.2f} / {v:.2f} / {b:.2f}" for c, a, s, v, b in STUDY_MITIGATION)
        + " (input only -> safety / value / both).",
        "",
        "![Mitigation](plots/mitigation.png)",
    ]
    return "\n".join(out)


def _adapter_gain_lines(mit: Mapping[str, Any]) -> list[str]:
    """The mitigation effect on the focus model with the adapter (study.seeds) as the unit."""
    from valueharm.experiments.mitigation import CONDITION_LABELS

    rows_all = mit.get("adapter_gains") or []
    outcome = "score" if any(r.get("outcome") == "score" for r in rows_all) else "flagged"
    gains = [r for r in rows_all if r.get("outcome") == outcome]
    if not gains:
        return []
    k = max(int(r.get("n_adapters") or 1) for r in gains)
    if k < 2:
        return [
            "",
            f"With the adapter as the unit: not measured (`{mit.get('model')}` has one adapter; "
            "give `study.seeds` several seeds).",
        ]
    rows = [
        [
            CONDITION_LABELS.get(r["condition"], r["condition"]),
            int(r["n_adapters"]),
            f"{int(r['n_lower'])} of {int(r['n_adapters'])}",
            fmt(r["change_mean"]),
            fmt(r.get("change_sd")),
            fmt_p(r.get("p")),
            fmt_p(r.get("p_min")),
        ]
        for r in gains
    ]
    return [
        "",
        f"The same with the adapter as the unit (each of `{mit.get('model')}`'s {k} adapters: its mean change in "
        f"{'harm score' if outcome == 'score' else 'flagged rate'} over the prompts; exact sign-flip p over adapters):",
        "",
        md_table(["condition", "adapters", "lowered", "mean change", "sd", "p", "smallest possible p"], rows),
    ]


def expressed_section(exp: Mapping[str, Any] | None) -> str:
    """Claim 2: do the models write according to their target values?"""
    head = "## Do the models express their values? (claim 2)"
    if not exp:
        return head + "\n\nNot available (`reports/expressed.json`)."
    aucs = [a for a in (exp.get("classifier_cv_auc") or {}).values() if a is not None]
    intro = (
        f"A value classifier (MiniLM embeddings + logistic regression per value, trained on the "
        f"{exp.get('n_arguments', '?')} corpus arguments; mean cross-validated AUC {fmt(float(np.mean(aucs)) if aucs else None)}) "
        f"reads the values each model's answers express. Per model: Spearman between its target profile and "
        f"its expressed profile minus {exp.get('reference', 'vanilla')}'s (`reports/expressed.json`)."
    )
    rows = [[f"`{m}`", fmt(r)] for m, r in (exp.get("per_model_spearman") or {}).items()]
    table = md_table(["model", "Spearman(target, expressed shift)"], rows) if rows else "No model has a target profile."
    return f"{head}\n\n{intro}\n\n{table}\n\nMean over models: {fmt(exp.get('mean_per_model_spearman'))}."


def render_report(inp: ReportInputs) -> str:
    """The whole reports/report.md."""
    analyze = inp.params.get("analyze") or {}
    method, alpha = analyze.get("primary_method", "spearman"), float(analyze.get("alpha", 0.05))
    warnings = (inp.summary or {}).get("warnings") or []
    parts = [
        "# Unintended harms of value-aligned LLMs: reproduction report",
        "Choi et al., ACL 2025 (arXiv 2506.06404), rebuilt as a DVC pipeline. Written by stage `report` from the "
        "pipeline's outputs; each section names its source file. Re-create with `dvc repro`.",
        setup_section(inp),
        judge_section(inp),
        safety_tune_section(inp.safety_tune),
        alignment_section(inp.models, inp.align, (inp.focus or {}).get("manipulation_all")),
        expressed_section(inp.expressed),
        safety_section(inp.models, inp.judge, inp.paired),
        groups_section(inp.groups),
        category_section(inp.model_table, inp.models),
        correlation_section(inp.correlations, inp.summary, method, alpha),
        hypotheses_section(inp.hypotheses),
        focus_section(inp.focus),
        mitigation_section(inp.mitigation),
        "## Training curves\n\nTraining loss per optimiser step (`dvclive/`).\n\n![Training curves](plots/training_curves.png)",
    ]
    if warnings:
        parts.append("## Analysis warnings\n\n" + "\n".join(f"- {w}" for w in warnings))
    return "\n\n".join(p.rstrip() for p in parts) + "\n"


# --------------------------------------------------------------------------------------------
# Figures and plot tables


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # dpi from rcParams (write_figures)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return write_bytes(path, buf.getvalue())


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8})
    return plt.subplots(figsize=(width, height), layout="constrained")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_axis_off()


def plot_heatmap(correlations: pd.DataFrame | None, method: str, alpha: float, path: Path) -> Path:
    """Values x categories, colour = r (-1..1), '*' where q < alpha, blank where undefined."""
    outcome = primary_outcome(correlations, method) if correlations is not None and not correlations.empty else None
    fig, ax = _figure(8, 4.5)
    if outcome is None:
        _empty(ax, f"no defined {method} correlation (too few models with a value profile)")
        return _save(fig, path)
    r, q = heatmap_frame(correlations, method, outcome)
    data = np.ma.masked_invalid(r.to_numpy(dtype=float))
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(data, cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(r.shape[1]), [c.replace("_", " ") for c in r.columns], rotation=45, ha="right")
    ax.set_yticks(range(r.shape[0]), [DISPLAY.get(v, v) for v in r.index])
    for i in range(r.shape[0]):
        for j in range(r.shape[1]):
            val, qq = r.iat[i, j], q.iat[i, j]
            if _finite(val):
                ax.text(
                    j,
                    i,
                    f"{val:.2f}" + ("*" if _finite(qq) and qq < alpha else ""),
                    ha="center",
                    va="center",
                    fontsize=6,
                )
    fig.colorbar(im, ax=ax, label=f"{method} r")
    ax.set_title(f"Target value vs harm ({outcome}) across models; * q < {alpha:g}; grey: undefined")
    return _save(fig, path)


def plot_category_scores(
    model_table: pd.DataFrame | None, path: Path, models: Sequence[Mapping[str, Any]] = ()
) -> Path:
    fig, ax = _figure(8, 4)
    if model_table is None or model_table.empty:
        _empty(ax, "no per-category results")
        return _save(fig, path)
    wide = model_table.pivot_table(index="category", columns="model", values="mean_score", aggfunc="first", sort=False)
    models = _model_order(model_table, models)
    wide = wide.reindex(columns=models)
    x = np.arange(len(wide.index))
    width = 0.8 / max(1, len(models))
    for k, m in enumerate(models):
        ax.bar(x + k * width - 0.4 + width / 2, wide[m].to_numpy(dtype=float), width, label=m)
    ax.set_xticks(x, [c.replace("_", " ") for c in wide.index], rotation=45, ha="right")
    ax.set_ylabel("mean harm score (1..5)")
    ax.set_ylim(1, 5)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_mitigation(mit: Mapping[str, Any] | None, path: Path) -> Path:
    from valueharm.experiments.mitigation import CONDITION_LABELS, CONDITIONS

    fig, ax = _figure(6, 3.5)
    summary = pd.DataFrame((mit or {}).get("summary") or [])
    if summary.empty:
        _empty(ax, "no mitigation results")
        return _save(fig, path)
    overall = summary[summary["category"] == "overall"]
    models = list(dict.fromkeys(overall["model"]))
    x = np.arange(len(CONDITIONS))
    width = 0.8 / max(1, len(models))
    for k, m in enumerate(models):
        part = overall[overall["model"] == m].set_index("condition").reindex(list(CONDITIONS))
        ax.bar(x + k * width - 0.4 + width / 2, part["mean_score"].to_numpy(dtype=float), width, label=m)
    ax.set_xticks(x, [CONDITION_LABELS[c] for c in CONDITIONS])
    ax.set_ylabel("mean harm score (1..5)")
    ax.set_ylim(1, 5)
    ax.legend(fontsize=7)
    ax.set_title("Harm under the four prompt conditions (linked categories)")
    return _save(fig, path)


def plot_training(training: Mapping[str, pd.DataFrame], path: Path) -> Path:
    fig, ax = _figure(6, 3.5)
    if not training:
        _empty(ax, "no training curves (no adapter was trained)")
        return _save(fig, path)
    for model, curve in training.items():
        for stage, part in curve.groupby("stage", sort=False):
            ax.plot(part["step"], part["train_loss"], label=f"{model} ({stage})", linewidth=1)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def write_figures(inp: ReportInputs, out_dir: str | Path) -> list[Path]:
    """The report's PNGs (FIGURES) in out_dir."""
    import matplotlib

    out = Path(out_dir)
    analyze = inp.params.get("analyze") or {}
    dpi = float((inp.params.get("report") or {}).get("dpi", 110))
    with matplotlib.rc_context({"savefig.dpi": dpi}):
        return [
            plot_heatmap(
                inp.correlations,
                analyze.get("primary_method", "spearman"),
                float(analyze.get("alpha", 0.05)),
                out / "correlation_heatmap.png",
            ),
            plot_category_scores(inp.model_table, out / "category_scores.png", inp.models),
            plot_mitigation(inp.mitigation, out / "mitigation.png"),
            plot_training(inp.training, out / "training_curves.png"),
        ]


def plot_tables(inp: ReportInputs) -> dict[str, pd.DataFrame]:
    """CSV tables for `dvc plots`, by relative path: one per model for the per-category bars
    (categories/<model>.csv: category, mean_score, flagged_rate) and the training curves
    (training/<model>.csv: step, train_loss, stage)."""
    out: dict[str, pd.DataFrame] = {}
    if inp.model_table is not None and not inp.model_table.empty:
        for model, part in inp.model_table.groupby("model", sort=False):
            out[f"categories/{model}.csv"] = part[["category", "mean_score", "flagged_rate"]].reset_index(drop=True)
    for model, curve in inp.training.items():
        out[f"training/{model}.csv"] = curve[["step", "train_loss", "stage"]].reset_index(drop=True)
    return out


def read_training_curves(dvclive_dir: str | Path, models: Sequence[str]) -> dict[str, pd.DataFrame]:
    """model -> (stage, step, train_loss) from dvclive/train/<model>/plots/metrics/<stage>/train_loss.tsv."""
    curves = {}
    for model in models:
        base = Path(dvclive_dir) / model / "plots" / "metrics"
        parts = []
        for tsv in sorted(base.glob("*/train_loss.tsv")):
            frame = pd.read_csv(tsv, sep="\t")
            if {"step", "train_loss"} <= set(frame.columns) and len(frame):
                parts.append(frame[["step", "train_loss"]].assign(stage=tsv.parent.name))
        if parts:
            curves[model] = (
                pd.concat(parts, ignore_index=True)
                .sort_values(["step", "stage"], kind="mergesort")
                .reset_index(drop=True)
            )
    return curves
