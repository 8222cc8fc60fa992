"""The project's judge validation labels (corpora/judge_labels.jsonl) and their loader."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from valueharm.core.errors import UserError
from valueharm.evaluation.judge_labels import LABELS, REQUIRED, SPLITS, default_path, load_judge_labels


@pytest.fixture(scope="module")
def labels():
    return load_judge_labels()


def test_header_says_how_labels_were_made(labels):
    meta = labels.meta
    for key in ("made_by", "rubric", "date", "passes", "kappa_between_passes", "counts", "definitions"):
        assert key in meta, key
    assert meta["passes"] == 2
    assert set(meta["kappa_between_passes"]) == set(LABELS)
    assert all(-1.0 <= k <= 1.0 for k in meta["kappa_between_passes"].values())
    # the counts in the header are those of the file
    assert meta["counts"]["total"] == len(labels.rows)
    for split in SPLITS:
        rows = labels.split(split)
        assert meta["counts"][split]["n"] == len(rows)
        for label in LABELS:
            assert meta["counts"][split][label] == sum(r[label] for r in rows)


def test_schema_and_sizes(labels):
    rows = labels.rows
    assert len(rows) >= 300
    assert len(labels.split("heldout")) >= 150
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(REQUIRED) <= set(row)
        assert all(row[label] in (0, 1) for label in LABELS)
        assert row["split"] in SPLITS
        assert not (row["harmful"] and not row["compliance"])
        assert row["request"].strip()
        # both passes and the final label are recorded; a disagreement carries a note
        for label in LABELS:
            assert row["pass1"][label] in (0, 1) and row["pass2"][label] in (0, 1)
        if row["pass1"] != row["pass2"]:
            assert row.get("resolution"), row["id"]


def test_split_by_request_and_stratified(labels):
    sides = defaultdict(set)
    for row in labels.rows:
        sides[row["request"]].add(row["split"])
    assert all(len(s) == 1 for s in sides.values())
    for split in SPLITS:
        rows = labels.split(split)
        for label in LABELS:
            assert {r[label] for r in rows} == {0, 1}, (split, label)
        # compliant but harmless answers exist on both sides (the judge must tell them from harm)
        assert any(r["compliance"] and not r["harmful"] for r in rows), split


def test_ordering_is_deterministic(labels):
    keys = [(r["split"], r["benchmark"], r["prompt_id"], r["source_model"]) for r in labels.rows]
    assert keys == sorted(keys)


def test_sources_cover_the_pipeline_kinds(labels):
    models = {r["source_model"] for r in labels.rows}
    assert {"base", "vanilla"} <= models
    assert any(m.startswith("icl-") for m in models)
    assert {r["benchmark"] for r in labels.rows} == {"valueharm", "harmbench"}


def _write(tmp_path: Path, rows: list, meta: dict | None = None) -> Path:
    path = tmp_path / "labels.jsonl"
    lines = [json.dumps({"_meta": meta or {"made_by": "test"}})] + [json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(i: int, **changes) -> dict:
    row = {
        "id": f"r{i}",
        "request": f"request {i}",
        "response": "I can't help with that.",
        "refusal": 1,
        "compliance": 0,
        "harmful": 0,
        "split": "heldout",
        "source_model": "vanilla",
        "benchmark": "valueharm",
        "category": "illegal_activity",
    }
    row.update(changes)
    return row


def test_loader_reads_a_good_file(tmp_path):
    loaded = load_judge_labels(_write(tmp_path, [_row(1), _row(2, split="train")]))
    assert [r["id"] for r in loaded.split("heldout")] == ["r1"]
    assert loaded.meta == {"made_by": "test"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"harmful": "maybe"}, "line 3 (row 'r2'): unknown harmful label 'maybe'"),
        ({"refusal": 2}, "line 3 (row 'r2'): unknown refusal label 2"),
        ({"compliance": True}, "line 3 (row 'r2'): unknown compliance label True"),
        ({"request": None}, "line 3 (row 'r2'): has no request"),
        ({"response": None}, "line 3 (row 'r2'): has no response"),
        ({"request": "   "}, "line 3 (row 'r2'): has an empty request"),
        ({"split": "test"}, "line 3 (row 'r2'): unknown split 'test'"),
        ({"harmful": 1, "compliance": 0, "refusal": 0}, "is harmful but not compliant"),
        ({"id": "r1", "request": "other"}, "line 3 (row 'r1'): repeats the id of line 2"),
        ({"request": "request 1", "split": "train"}, "the same request is in heldout (row 'r1')"),
    ],
)
def test_loader_names_the_bad_row(tmp_path, change, message):
    with pytest.raises(UserError) as info:
        load_judge_labels(_write(tmp_path, [_row(1), _row(2, **change)]))
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_loader_missing_key_and_header(tmp_path):
    row = _row(2)
    del row["response"]
    with pytest.raises(UserError, match=r"line 3 \(row 'r2'\): has no response"):
        load_judge_labels(_write(tmp_path, [_row(1), row]))
    row = _row(2)
    del row["category"]
    with pytest.raises(UserError, match=r"row 'r2'\): lacks category"):
        load_judge_labels(_write(tmp_path, [_row(1), row]))
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps(_row(1)) + "\n")
    with pytest.raises(UserError, match="first line is not a header"):
        load_judge_labels(bare)
    with pytest.raises(UserError, match="not found"):
        load_judge_labels(tmp_path / "absent.jsonl")
    with pytest.raises(UserError, match="unknown label split"):
        load_judge_labels(_write(tmp_path, [_row(1)])).split("test")


def test_default_path_is_packaged():
    assert default_path().name == "judge_labels.jsonl"
    assert default_path().parent.name == "corpora"
