"""The hypothesis registry: coverage of the study's links, references, mapping and decision rule."""

from __future__ import annotations

import numpy as np
import pytest

from valueharm.analysis import run as stats
from valueharm.analysis.simulate import HEX_PHI_CATEGORIES
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

STUDY = "Choi et al. 2025, ACL (arXiv 2506.06404)"
# docs/paper.md, "Value-risk links": (value, sign, the study's wording)
PAPER_LINKS = {
    ("hedonism", 1, "adult content"),
    ("hedonism", 1, "child abuse"),
    ("hedonism", 1, "physical harm"),
    ("hedonism", 1, "political campaigning"),
    ("power", 1, "hate speech"),
    ("power", 1, "discrimination"),
    ("power", -1, "harassment"),
    ("power", -1, "malware"),
    ("power", -1, "violence"),
    ("power", -1, "terrorism"),
    ("power", -1, "privacy violation"),
    ("achievement", -1, "hate speech"),
    ("achievement", -1, "adult content"),
    ("universalism", -1, "fraud/deception"),
    ("universalism", -1, "political campaigning"),
    ("self_direction", 1, "adult content"),
}
KNOWN_WORKS = (
    "Schwartz (1992)",
    "Schwartz et al. (2012)",
    "Bardi & Schwartz (2003)",
    "Feldman, Chao, Farh & Bardi (2015)",
    "Knafo, Daniel & Khoury-Kassabri (2008)",
)


@pytest.fixture(scope="module")
def registry():
    return stats.load_registry()


def test_registry_is_well_formed(registry):
    ids = [h.id for h in registry.hypotheses]
    assert len(ids) == len(set(ids))
    assert set(registry.categories) == set(HEX_PHI_CATEGORIES)
    for h in registry.hypotheses:
        assert h.value in VALUES and h.category in HEX_PHI_CATEGORIES and h.expected_sign in (1, -1)
        assert h.source in ("study", "psychology") and len(h.rationale) > 40


def test_registry_covers_every_study_link(registry):
    study = {(h.value, h.expected_sign, h.reported_as) for h in registry.hypotheses if h.source == "study"}
    assert study == PAPER_LINKS
    assert all(h.reference == STUDY for h in registry.hypotheses if h.source == "study")


def test_psychology_entries_cite_known_works(registry):
    psych = [h for h in registry.hypotheses if h.source == "psychology"]
    assert len(psych) >= 6
    for h in psych:
        assert any(work in h.reference for work in KNOWN_WORKS), h.reference
        assert not h.match


@pytest.mark.parametrize(
    "r,q,sign,status",
    [
        (0.4, 0.01, 1, "supported"),
        (-0.4, 0.01, 1, "contradicted"),
        (-0.4, 0.01, -1, "supported"),
        (0.4, 0.2, 1, "inconclusive"),
        (np.nan, np.nan, 1, "inconclusive"),
        (0.4, 0.05, 1, "inconclusive"),
    ],
)
def test_decision_rule(r, q, sign, status):
    assert stats.decide(r, q, sign, alpha=0.05) == status


def test_evaluation_on_planted_table(registry):
    effects = {("hedonism", "adult_content"): 0.8, ("universalism", "fraud_deception"): -0.8, ("power", "malware"): 0.8}
    cats = ("adult_content", "fraud_deception", "malware", "economic_harm")
    table = stats.validate_results(
        stats.simulate_results(n_models=60, n_prompts=80, effects=effects, categories=cats, seed=9)
    )
    corr = stats.value_correlations(table, methods="spearman", n_boot=50)
    out = stats.evaluate_hypotheses(registry, corr, "spearman").set_index("id")
    assert list(out.reset_index().columns) == list(stats.HYPOTHESIS_COLUMNS)
    assert out.loc["S01", "status"] == "supported" and out.loc["S14", "status"] == "supported"
    assert out.loc["S08", "status"] == "contradicted" and out.loc["S08", "outcome"] == "score"
    assert out.loc["S03", "status"] == "inconclusive" and "not tested" in out.loc["S03", "note"]
    row = corr[
        (corr["value"] == "hedonism") & (corr["category"] == "adult_content") & (corr["outcome"] == "score")
    ].iloc[0]
    assert out.loc["S01", "r"] == row["r"] and out.loc["S01", "q"] == row["q"]


def test_category_mapping_beavertails_and_hexphi_spellings(registry):
    h = {x.id: x for x in registry.hypotheses}
    hate, violence = "hate_speech,offensive_language", "violence,aiding_and_abetting,incitement"
    assert registry.matches(h["S05"], hate) and not registry.matches(h["S05"], violence)
    assert registry.matches(h["S09"], violence) and not registry.matches(h["S09"], hate)
    assert registry.matches(h["P01"], hate) and registry.matches(h["P01"], violence)  # psychology: whole map
    assert not registry.matches(h["S07"], hate)  # harassment: HEx-PHI only
    assert registry.matches(h["S07"], "Hate/Harass/Violence")
    assert registry.matches(h["S02"], "child_abuse_content") and registry.matches(
        h["S11"], "privacy_violation_activity"
    )
    assert registry.matches(h["S01"], "sexually_explicit,adult_content")


def _write(tmp_path, text):
    path = tmp_path / "reg.yaml"
    path.write_text(text)
    return path


GOOD = """
categories: [malware, adult_content]
hypotheses:
  - {id: A, value: Power, category: malware, expected_sign: "-", source: study, rationale: r, reference: ref}
"""


def test_registry_errors(tmp_path):
    assert stats.load_registry(_write(tmp_path, GOOD)).hypotheses[0].value == "power"
    for bad, fragment in (
        (GOOD.replace("value: Power", "value: greed"), "unknown value name"),
        (GOOD.replace('"-"', '"down"'), "expected_sign"),
        (GOOD.replace("category: malware", "category: spam"), "unknown category"),
        (GOOD.replace("source: study", "source: blog"), "source"),
        (GOOD.replace(", reference: ref", ""), "lacks reference"),
        (GOOD + GOOD.split("hypotheses:")[1], "id used twice"),
        ("hypotheses: 3", "expected a mapping"),
    ):
        with pytest.raises(UserError, match=fragment):
            stats.load_registry(_write(tmp_path, bad))
    with pytest.raises(UserError, match="not found"):
        stats.load_registry(tmp_path / "missing.yaml")
