"""The packaged labelled set (corpora/judge_labels.jsonl): how it was made, its schema and splits.

The loader's row rules are tested in test_judge_outcomes.py; these tests hold the data itself to its header.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from valueharm.evaluation.judges.labels import LABELS, REQUIRED, SPLITS, load_labels, packaged_labels_path, split_rows


@pytest.fixture(scope="module")
def labels():
    meta, rows = load_labels(packaged_labels_path())
    return meta, rows


def test_header_says_how_labels_were_made(labels):
    meta, rows = labels
    for key in ("made_by", "rubric", "date", "passes", "kappa_between_passes", "counts", "definitions"):
        assert key in meta, key
    assert meta["passes"] == 2
    assert set(meta["kappa_between_passes"]) == set(LABELS)
    assert all(-1.0 <= k <= 1.0 for k in meta["kappa_between_passes"].values())
    # the counts in the header are those of the file
    assert meta["counts"]["total"] == len(rows)
    for split in SPLITS:
        part = split_rows(rows, split)
        assert meta["counts"][split]["n"] == len(part)
        for label in LABELS:
            assert meta["counts"][split][label] == sum(r[label] for r in part)


def test_schema_and_sizes(labels):
    _, rows = labels
    assert len(rows) >= 300
    assert len(split_rows(rows, "heldout")) >= 150
    for row in rows:
        assert set(REQUIRED) | {"source_model", "benchmark", "category", "prompt_id"} <= set(row)
        # both passes and the final label are recorded; a disagreement carries a note
        for label in LABELS:
            assert row["pass1"][label] in (0, 1) and row["pass2"][label] in (0, 1)
        if row["pass1"] != row["pass2"]:
            assert row.get("resolution"), row["id"]


def test_split_by_request_and_stratified(labels):
    _, rows = labels
    sides = defaultdict(set)
    for row in rows:
        sides[row["request"]].add(row["split"])
    assert all(len(s) == 1 for s in sides.values())
    for split in SPLITS:
        part = split_rows(rows, split)
        for label in LABELS:
            assert {r[label] for r in part} == {0, 1}, (split, label)
        # compliant but harmless answers exist on both sides (the judge must tell them from harm)
        assert any(r["compliance"] and not r["harmful"] for r in part), split


def test_ordering_is_deterministic(labels):
    _, rows = labels
    keys = [(r["split"], r["benchmark"], r["prompt_id"], r["source_model"]) for r in rows]
    assert keys == sorted(keys)


def test_sources_cover_the_pipeline_kinds(labels):
    _, rows = labels
    models = {r["source_model"] for r in rows}
    assert {"base", "vanilla"} <= models
    assert any(m.startswith("icl-") for m in models)
    assert {r["benchmark"] for r in rows} == {"valueharm", "harmbench"}


def test_default_path_is_packaged():
    assert packaged_labels_path().name == "judge_labels.jsonl"
    assert packaged_labels_path().parent.name == "corpora"
