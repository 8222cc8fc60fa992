"""reports/report.html: the report as one self-contained page, down to every single answer.

report.md gives the tables; a reader who doubts a cell (why does `hedonism` score 3.4 on
adult_content?) needs the answers and labels behind it, as `inspect view` or lm-eval's
`--log_samples` give them. This page holds the report's sections and plots (PNGs inlined as
base64), and every cell of the harm-by-model-and-category table links to an anchor listing that
cell's prompts, answers and labels (refusal, compliance, harmful, score, flagged, judge id);
each model's questionnaire answers have an anchor too. A search box and filters by model,
category and label narrow the answer list in the browser.

One file, no server, no CDN, no network: CSS and JS are inline, so the page works offline and can
be mailed. It is rendered with Jinja2 (autoescaping on; answers are model output and are never
trusted as HTML), from the same inputs as report.md plus the per-model label, generation and
questionnaire files. The output is deterministic (no timestamps; rows in study-model order, then
category, then file order), so DVC sees it change only when its inputs change.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from valueharm.core.atomic import read_jsonl
from valueharm.report.markdown import DASH, ReportInputs, _model_order, fmt, render_report

TEMPLATE = "report.html.j2"
TEMPLATES = Path(__file__).with_name("templates")
LABEL_FIELDS = ("refusal", "compliance", "harmful", "score", "flagged")  # shown when present in a label row
OVERALL = "overall"


@dataclass
class Drilldown:
    """The single answers behind the report's tables."""

    answers: list[dict[str, Any]] = field(default_factory=list)  # joined generation + label rows
    questionnaire: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # model -> align rows


def anchor(*parts: str) -> str:
    """A stable HTML id from model/category names (anything outside [A-Za-z0-9_-] becomes '_')."""
    return "--".join(re.sub(r"[^A-Za-z0-9_-]", "_", str(p)) for p in parts)


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    return (str(row.get("benchmark")), str(row.get("prompt_id")))


def join_answers(generations: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per judged answer: the generation (prompt, response) with its label fields.

    Rows are matched on (benchmark, prompt_id); a label without a generation keeps an empty
    answer rather than being dropped, so the page never shows fewer rows than the tables count.
    """
    by_key = {_key(g): g for g in generations}
    out = []
    for label in labels:
        gen = by_key.get(_key(label), {})
        row = {
            "model": label.get("model", gen.get("model")),
            "prompt_id": label.get("prompt_id"),
            "benchmark": label.get("benchmark"),
            "category": label.get("category") or gen.get("category") or "uncategorised",
            "prompt": gen.get("prompt", ""),
            "response": gen.get("response") or "",
            "judge": label.get("judge"),
            "judge_version": label.get("judge_version"),
            "judge_config": label.get("judge_config"),
            "parse_error": label.get("parse_error"),
        }
        for name in LABEL_FIELDS:
            if name in label:
                row[name] = label[name]
        out.append(row)
    return out


def read_drilldown(
    models: Sequence[str],
    generations_dir: str | Path = "artifacts/generations",
    labels_dir: str | Path = "artifacts/labels",
    align_dir: str | Path = "artifacts/align",
) -> Drilldown:
    """The per-model files the page lists; a model without labels has no answers on the page."""
    drill = Drilldown()
    for model in models:
        labels_path = Path(labels_dir) / f"{model}.jsonl"
        gens_path = Path(generations_dir) / f"{model}.jsonl"
        if labels_path.exists():
            gens = read_jsonl(gens_path) if gens_path.exists() else []
            drill.answers += join_answers(gens, read_jsonl(labels_path))
        align_path = Path(align_dir) / f"{model}.jsonl"
        if align_path.exists():
            drill.questionnaire[model] = read_jsonl(align_path)
    return drill


# --------------------------------------------------------------------------------------------
# Pieces the template shows


def _flag(value: Any) -> bool | None:
    """0/1, bool or a probability as a yes/no label (None: not given)."""
    if value is None:
        return None
    try:
        return float(value) >= 0.5
    except (TypeError, ValueError):
        return None


def label_tags(row: Mapping[str, Any]) -> list[str]:
    """The row's labels as filter tags (the label filter matches one of them)."""
    tags = []
    for name, yes, no in (
        ("refusal", "refused", "not-refused"),
        ("compliance", "complied", "not-complied"),
        ("harmful", "harmful", "not-harmful"),
        ("flagged", "flagged", "not-flagged"),
    ):
        flag = _flag(row.get(name))
        if flag is not None:
            tags.append(yes if flag else no)
    if row.get("parse_error"):
        tags.append("parse-error")
    return tags


def label_cells(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, shown value) for every label field the row has, then the judge id."""
    cells = []
    for name in LABEL_FIELDS:
        if name not in row:
            continue
        value = row[name]
        if value is None:
            shown = DASH
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif name == "score":
            shown = f"{value:g}" if isinstance(value, int | float) else str(value)
        elif isinstance(value, int) and value in (0, 1):
            shown = "yes" if value else "no"
        elif isinstance(value, float):
            shown = f"{value:.3f}"
        else:
            shown = str(value)
        cells.append((name, shown))
    judge = f"{row.get('judge')}@{row.get('judge_version')}" + (
        f" ({row['judge_config']})" if row.get("judge_config") else ""
    )
    cells.append(("judge", judge))
    if row.get("parse_error"):
        cells.append(("parse error", str(row["parse_error"])))
    return cells


def _category_order(answers: Sequence[Mapping[str, Any]], model_table: pd.DataFrame | None) -> list[str]:
    cats: list[str] = []
    if model_table is not None and not model_table.empty:
        cats = [c for c in dict.fromkeys(model_table["category"]) if c != OVERALL]
    seen = sorted({a["category"] for a in answers} - set(cats))
    return sorted(cats) + seen


def harm_table(
    model_table: pd.DataFrame | None, answers: Sequence[Mapping[str, Any]], models: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The harm-by-model-and-category table, each cell with its anchor and answer count.

    The numbers are report.md's (`reports/analysis/models.csv`); without that table they are
    the mean label scores of the answers themselves.
    """
    counts: dict[tuple[str, str], int] = {}
    sums: dict[tuple[str, str], list[float]] = {}
    for a in answers:
        for cat in (a["category"], OVERALL):
            counts[(a["model"], cat)] = counts.get((a["model"], cat), 0) + 1
            if isinstance(a.get("score"), int | float) and not isinstance(a.get("score"), bool):
                sums.setdefault((a["model"], cat), []).append(float(a["score"]))
    lookup: dict[tuple[str, str], Any] = {}
    if model_table is not None and not model_table.empty:
        order = _model_order(model_table, models)
        for _, r in model_table.iterrows():
            lookup[(r["model"], r["category"])] = r["mean_score"]
    else:
        order = [m["name"] for m in models if any(a["model"] == m["name"] for a in answers)]
        order += sorted({a["model"] for a in answers} - set(order))
        lookup = {k: sum(v) / len(v) for k, v in sums.items()}
    cats = _category_order(answers, model_table) + [OVERALL]
    rows = []
    for model in order:
        cells = []
        for cat in cats:
            n = counts.get((model, cat), 0)
            target = anchor("model", model) if cat == OVERALL else anchor("cell", model, cat)
            cells.append({"text": fmt(lookup.get((model, cat)), 2), "href": "#" + target if n else None, "n": n})
        rows.append({"model": model, "href": "#" + anchor("model", model), "cells": cells})
    return {"categories": cats, "rows": rows}


def answer_groups(answers: Sequence[Mapping[str, Any]], model_order: Sequence[str]) -> list[dict[str, Any]]:
    """model -> category -> answers, in the table's order, with anchors and label tags."""
    models = list(model_order) + sorted({a["model"] for a in answers} - set(model_order))
    cats = sorted({a["category"] for a in answers})
    groups = []
    for model in models:
        mine = [a for a in answers if a["model"] == model]
        if not mine:
            continue
        cells = []
        for cat in cats:
            rows = [
                {
                    **a,
                    "tags": " ".join(label_tags(a)),
                    "labels": label_cells(a),
                    "search": f"{a['prompt']}\n{a['response']}\n{a['prompt_id']}".lower(),
                }
                for a in mine
                if a["category"] == cat
            ]
            if rows:
                cells.append({"category": cat, "id": anchor("cell", model, cat), "rows": rows})
        groups.append({"model": model, "id": anchor("model", model), "n": len(mine), "cells": cells})
    return groups


def questionnaire_groups(
    questionnaire: Mapping[str, Sequence[Mapping[str, Any]]],
    align: Mapping[str, Mapping[str, Any]],
    model_order: Sequence[str],
) -> list[dict[str, Any]]:
    """Per model its questionnaire items, answers and parsed scores, with the alignment summary."""
    models = [m for m in model_order if m in questionnaire] + sorted(set(questionnaire) - set(model_order))
    out = []
    for model in models:
        rows = list(questionnaire[model])
        summary = align.get(model) or {}
        al = summary.get("alignment") or {}
        out.append(
            {
                "model": model,
                "id": anchor("questionnaire", model),
                "rows": rows,
                "n_parsed": sum(1 for r in rows if r.get("parsed") is not None),
                "nmse": fmt(al.get("nmse"), 4),
                "spearman": fmt(al.get("spearman")),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Sections from report.md


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _inline_images(html: str, images: Mapping[str, str]) -> str:
    """`<img src="plots/x.png">` -> a data: URI, so that the page needs no other file."""

    def swap(match: re.Match) -> str:
        src = match.group(1)
        name = src.rsplit("/", 1)[-1]
        return f'src="{images[name]}"' if name in images else match.group(0)

    return re.sub(r'src="([^"]+\.png)"', swap, html)


def split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(title, [(heading, body markdown)]) from report.md's `# ` title and `## ` sections."""
    title, intro, sections = "", [], []
    current: list[str] | None = None
    for line in markdown.splitlines():
        if line.startswith("# ") and not title:
            title = line[2:].strip()
        elif line.startswith("## "):
            current = []
            sections.append((line[3:].strip(), current))
        elif current is None:
            intro.append(line)
        else:
            current.append(line)
    out = [("", "\n".join(intro).strip())] if "\n".join(intro).strip() else []
    return title, out + [(h, "\n".join(body).strip()) for h, body in sections]


def _drop_first_table(md: str) -> str:
    """The body without its first Markdown table (replaced by the linked table)."""
    lines, out, state = md.splitlines(), [], "before"
    for line in lines:
        is_row = line.lstrip().startswith("|")
        if state == "before" and is_row:
            state = "in"
            continue
        if state == "in":
            if is_row:
                continue
            state = "after"
        out.append(line)
    return "\n".join(out)


def images_from(plots_dir: str | Path) -> dict[str, str]:
    """PNG name -> data: URI for every PNG in plots_dir (sorted, so the page is stable)."""
    out = {}
    for path in sorted(Path(plots_dir).glob("*.png")):
        out[path.name] = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return out


def render_html(inp: ReportInputs, drill: Drilldown, images: Mapping[str, str] | None = None) -> str:
    """The whole reports/report.html."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    md = _markdown()
    images = dict(images or {})
    title, parts = split_sections(render_report(inp))
    table = harm_table(inp.model_table, drill.answers, inp.models)
    order = [r["model"] for r in table["rows"]] or [m["name"] for m in inp.models]
    sections = []
    for heading, body in parts:
        kind = (
            "harm" if heading.startswith("Harm by category") else "alignment" if heading.startswith("Alignment") else ""
        )
        if kind == "harm" and table["rows"]:
            body = _drop_first_table(body)
        sections.append(
            {
                "id": anchor("section", heading or "intro"),
                "title": heading,
                "html": _inline_images(md.render(body), images),
                "kind": kind,
            }
        )
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    answers = answer_groups(drill.answers, order)
    labels_present = sorted({t for g in answers for c in g["cells"] for r in c["rows"] for t in r["tags"].split()})
    return env.get_template(TEMPLATE).render(
        title=title or "valueharm report",
        sections=sections,
        harm=table,
        answers=answers,
        questionnaire=questionnaire_groups(drill.questionnaire, inp.align, order),
        filter_models=[g["model"] for g in answers],
        filter_categories=sorted({c["category"] for g in answers for c in g["cells"]}),
        filter_labels=labels_present,
        n_answers=len(drill.answers),
    )
