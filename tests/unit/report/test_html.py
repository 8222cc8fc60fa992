"""reports/report.html from small synthetic label/generation/questionnaire files: self-contained,
every harm-table cell links to its answers, labels shown, deterministic; and in a real headless
Chromium: a click on one cell shows that cell's answers, search and filters narrow the list."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from valueharm.core.atomic import write_jsonl
from valueharm.report.html import Drilldown, anchor, join_answers, label_tags, read_drilldown, render_html
from valueharm.report.markdown import write_figures

from .cdp import Browser, find_chromium
from .test_markdown import CATS, MODELS, full_inputs

# A 1x1 PNG: the page must carry its plots inline.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def synthetic_files(root: Path) -> None:
    """Per model 2 prompts per category; labels with the judge helper's compliance/harmful fields."""
    for m, model in enumerate(MODELS):
        name = model["name"]
        gens, labels, align = [], [], []
        for c, cat in enumerate(CATS):
            for k in range(2):
                pid = f"p-{cat}-{k}"
                gens.append(
                    {
                        "model": name,
                        "benchmark": "default",
                        "prompt_id": pid,
                        "category": cat,
                        "prompt": f"How would one do {cat} thing {k}?",
                        "response": f"{name} answers {cat} {k}: <b>not html</b>",
                    }
                )
                labels.append(
                    {
                        "model": name,
                        "benchmark": "default",
                        "prompt_id": pid,
                        "category": cat,
                        "score": 1 + (m + c + k) % 5,
                        "flagged": (m + k) % 2,
                        "refusal": k,
                        "compliance": 1 - k,
                        "harmful": (m + c) % 2,
                        "judge": "classifier",
                        "judge_version": "3",
                        "judge_config": "abcdef0123456789",
                        "parse_error": None,
                    }
                )
        for i, value in enumerate(("hedonism", "power")):
            align.append({"item": f"q{i}", "value": value, "text_sent": "...", "answer": f"{i + 3}", "parsed": i + 3})
        align.append({"item": "q9", "value": "tradition", "text_sent": "...", "answer": "unsure", "parsed": None})
        write_jsonl(root / "generations" / f"{name}.jsonl", gens)
        write_jsonl(root / "labels" / f"{name}.jsonl", labels)
        write_jsonl(root / "align" / f"{name}.jsonl", align)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("html")
    synthetic_files(root)
    inputs = full_inputs()
    plots = root / "plots"
    write_figures(inputs, plots)
    from valueharm.report.html import images_from

    drill = read_drilldown([m["name"] for m in MODELS], root / "generations", root / "labels", root / "align")
    html = render_html(inputs, drill, images_from(plots))
    path = root / "report.html"
    path.write_text(html, encoding="utf-8")
    return path, html


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if a.get("src"):
            self.srcs.append(a["src"])
        if tag in ("link", "script") and (a.get("href") or a.get("src")):
            self.external.append(tag)


def test_join_keeps_every_label_and_matches_on_prompt():
    gens = [{"benchmark": "b", "prompt_id": "1", "prompt": "P1", "response": "R1", "category": "x"}]
    labels = [
        {"model": "m", "benchmark": "b", "prompt_id": "1", "category": "x", "score": 3, "refusal": 0},
        {"model": "m", "benchmark": "b", "prompt_id": "2", "category": "x", "score": 4, "refusal": 1},
    ]
    rows = join_answers(gens, labels)
    assert [r["prompt"] for r in rows] == ["P1", ""]
    assert rows[0]["response"] == "R1" and rows[1]["score"] == 4
    assert "compliance" not in rows[0]  # absent fields stay absent (not shown as 'no')


def test_label_tags():
    assert label_tags({"refusal": 1, "flagged": 0, "harmful": True}) == ["refused", "harmful", "not-flagged"]
    assert label_tags({"refusal": 0, "compliance": 0.9, "parse_error": "bad"}) == [
        "not-refused",
        "complied",
        "parse-error",
    ]


def test_page_is_self_contained_and_every_cell_links_to_its_answers(page):
    path, html = page
    parsed = Links()
    parsed.feed(html)
    assert parsed.external == [], "no external scripts or stylesheets"
    assert not re.search(r"https?://", html), "no network address in the page"
    assert parsed.srcs and all(s.startswith("data:image/png;base64,") for s in parsed.srcs)
    assert len(parsed.srcs) == 4  # the four report figures
    for model in MODELS:
        for cat in CATS:
            target = anchor("cell", model["name"], cat)
            assert f"#{target}" in parsed.hrefs, target
            assert target in parsed.ids
        assert anchor("questionnaire", model["name"]) in parsed.ids
    internal = [h[1:] for h in parsed.hrefs if h.startswith("#")]
    assert internal and set(internal) <= parsed.ids, set(internal) - parsed.ids
    # the report's sections are there too
    for heading in ("Setup", "Safety per model", "Harm by category", "Hypotheses", "Mitigation by prompting"):
        assert f"<h2>{heading}" in html


def test_answers_are_escaped_and_labels_shown(page):
    _, html = page
    assert "<b>not html</b>" not in html and "&lt;b&gt;not html&lt;/b&gt;" in html
    for label in ("refusal", "compliance", "harmful", "score", "flagged", "judge"):
        assert f"<th>{label}</th>" in html
    assert "classifier@3 (abcdef0123456789)" in html
    assert "unsure" in html  # unparsed questionnaire answer shown


def test_table_numbers_are_the_markdown_reports(page):
    _, html = page
    inputs = full_inputs()
    row = inputs.model_table[(inputs.model_table["model"] == "hedonism") & (inputs.model_table["category"] == CATS[0])]
    value = f"{float(row['mean_score'].iloc[0]):.2f}"
    href = "#" + anchor("cell", "hedonism", CATS[0])
    assert re.search(rf'<a href="{href}" title="2 answers">{re.escape(value)}</a>', html)


def test_render_is_deterministic(page, tmp_path):
    _, html = page
    root = tmp_path
    synthetic_files(root)
    drill = read_drilldown([m["name"] for m in MODELS], root / "generations", root / "labels", root / "align")
    (root / "plots").mkdir()
    write_figures(full_inputs(), root / "plots")
    from valueharm.report.html import images_from

    assert render_html(full_inputs(), drill, images_from(root / "plots")) == html


def test_page_without_answers_still_renders():
    html = render_html(full_inputs(), Drilldown(), {"category_scores.png": "data:image/png;base64,AAAA"})
    assert "No judged answers were found." in html and "<h2>Harm by category" in html


# --------------------------------------------------------------------------------------------
# Real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = find_chromium()
    if exe is None:
        pytest.skip(
            "no Chromium found (set $CHROMIUM or install Debian's `chromium` package: apt-get install -y chromium); "
            "the browser test of reports/report.html is skipped"
        )
    with Browser(exe, tmp_path_factory.mktemp("chromium-profile")) as b:
        yield b


def visible_answers(b: Browser) -> list[dict]:
    return b.evaluate(
        "Array.from(document.querySelectorAll('article.answer')).filter(a => a.offsetParent !== null)"
        ".map(a => ({model: a.dataset.model, category: a.dataset.category,"
        " response: a.querySelector('.response').textContent}))"
    )


def test_browser_click_through_to_one_cells_answers(page, browser, tmp_path):
    path, _ = page
    browser.navigate(path.as_uri())
    assert browser.evaluate("document.title").startswith("Unintended harms")
    assert browser.evaluate("document.querySelectorAll('img').length") == 4
    assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    target = anchor("cell", "hedonism", CATS[1])
    browser.click(f'#harm-table a[href="#{target}"]')
    browser.wait_event("Page.navigatedWithinDocument")
    assert browser.wait_for(f"location.hash === '#{target}'")
    browser.wait_for(f"document.getElementById({target!r}).getBoundingClientRect().top > 0")
    cell = browser.evaluate(
        f"(() => {{ const s = document.getElementById({target!r}); const r = s.getBoundingClientRect();"
        " return {visible: s.offsetParent !== null, top: r.top, height: innerHeight,"
        " answers: Array.from(s.querySelectorAll('article.answer .response')).map(e => e.textContent),"
        " labels: Array.from(s.querySelectorAll('td.label-refusal')).map(e => e.textContent)}; })()"
    )
    assert cell["visible"] and 0 < cell["top"] < cell["height"] / 2, cell  # scrolled to, below the sticky nav
    assert cell["answers"] == [
        f"hedonism answers {CATS[1]} 0: <b>not html</b>",
        f"hedonism answers {CATS[1]} 1: <b>not html</b>",
    ]
    assert cell["labels"] == ["no", "yes"]
    browser.screenshot(tmp_path / "cell.png")
    assert (tmp_path / "cell.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # search narrows to the matching answers, across models
    browser.type_into("#search", "malware thing 1")
    shown = visible_answers(browser)
    assert shown and {a["category"] for a in shown} == {"malware"} and len(shown) == len(MODELS)
    # a model filter on top leaves one
    browser.evaluate(
        "(() => { const s = document.getElementById('f-model'); s.value = 'vanilla';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert [a["model"] for a in visible_answers(browser)] == ["vanilla"]
    assert browser.evaluate("document.getElementById('shown').textContent") == f"1 of {4 * len(MODELS)} answers"
    # a label filter alone: refused answers only
    browser.evaluate(
        "(() => { for (const id of ['f-model']) { const s = document.getElementById(id); s.value = '';"
        " s.dispatchEvent(new Event('change')); }"
        " const q = document.getElementById('search'); q.value = ''; q.dispatchEvent(new Event('input'));"
        " const l = document.getElementById('f-label'); l.value = 'refused'; l.dispatchEvent(new Event('change')); })()"
    )
    refused = visible_answers(browser)
    assert len(refused) == 2 * len(MODELS) and all(a["response"].endswith("1: <b>not html</b>") for a in refused)
    # following a cell link while a filter hides it clears the filters and shows the cell
    other = anchor("cell", "vanilla", CATS[0])
    browser.evaluate(
        "(() => { const s = document.getElementById('f-model'); s.value = 'hedonism';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    browser.click(f'#harm-table a[href="#{other}"]')
    browser.wait_event("Page.navigatedWithinDocument")
    # hashchange is dispatched as a task after the navigation event, so wait for its handler
    assert browser.wait_for(f"document.getElementById({other!r}).offsetParent !== null")
    assert browser.evaluate("document.getElementById('f-model').value") == ""
    browser.screenshot(tmp_path / "after-filter.png")


def test_browser_questionnaire_link(page, browser):
    path, _ = page
    browser.navigate(path.as_uri())
    target = anchor("questionnaire", "icl-hedonism")
    browser.click(f'a[href="#{target}"]')
    browser.wait_event("Page.navigatedWithinDocument")
    rows = browser.evaluate(
        f"Array.from(document.querySelectorAll('#{target} tbody tr')).map(r => r.cells[2].textContent)"
    )
    assert rows == ["3", "4", "unsure"]
