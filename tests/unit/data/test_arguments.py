"""Argument corpus loaders: the 10-value table (ours and the study's) and the Touche23 release."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from valueharm.data.arguments import (
    LEVEL2_TO_BASIC, Argument, label_counts, load_arguments, mapping_table, to_dataset,
)
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO.parent / "shared" / "realdata"
VALUE_EVAL = REALDATA / "valueEval_10.csv"
OURS = REPO / "src" / "valueharm" / "corpora" / "value_arguments.tsv"

HEADER = ["Conclusion", "Stance", "Premise", "Achievement", "Benevolence", "Conformity", "Hedonism",
          "Power", "Security", "Self-direction", "Stimulation", "Tradition", "Universalism"]


def write_tsv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_value_table_reads_labels_by_column_name_not_position(tmp_path: Path) -> None:
    # value columns shuffled and renamed in other spellings: names, not positions, decide
    header = ["id", "Premise", "Stance", "Conclusion", "universalism", "SELF_DIRECTION", "tradition",
              "Achievement", "benevolence", "Conformity", "hedonism", "Power", "security", "stimulation"]
    rows = [["a1", "premise one", "in favour of", "Claim one", 1, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ["a2", "premise two", "against", "Claim two", 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]]
    args = load_arguments(write_tsv(tmp_path / "c.tsv", header, rows))
    assert [a.id for a in args] == ["a1", "a2"]
    assert args[0].stance == "in favor of" and args[1].stance == "against"
    assert args[0].conclusion == "Claim one" and args[0].premise == "premise one"
    assert args[0].values == ("stimulation", "universalism")
    assert args[1].values == ("achievement", "self_direction")
    assert list(args[0].labels) == list(VALUES)


def test_unnamed_index_column_is_the_id_and_commas_work(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        w = csv.writer(handle)
        w.writerow([""] + HEADER)
        w.writerow([7, "C", "against", 'he said "no", twice', 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    (arg,) = load_arguments(path)
    assert arg.id == "7" and arg.premise == 'he said "no", twice' and arg.values == ("power",)


@pytest.mark.parametrize("drop, named", [("Premise", "Premise"), ("Hedonism", "Hedonism"), ("Stance", "Stance")])
def test_missing_column_is_named(tmp_path: Path, drop: str, named: str) -> None:
    header = [h for h in HEADER if h != drop]
    row = ["C", "against", "P"] + [0] * 10
    row = [x for h, x in zip(HEADER, row) if h != drop]
    with pytest.raises(UserError, match=named):
        load_arguments(write_tsv(tmp_path / "c.tsv", header, [row]))


def test_empty_and_label_less_corpora_fail_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no arguments"):
        load_arguments(write_tsv(tmp_path / "e.tsv", HEADER, []))
    (tmp_path / "blank.tsv").write_text("", encoding="utf-8")
    with pytest.raises(UserError, match="empty"):
        load_arguments(tmp_path / "blank.tsv")
    with pytest.raises(UserError, match="no value label"):
        load_arguments(write_tsv(tmp_path / "z.tsv", HEADER, [["C", "against", "P"] + [0] * 10]))
    with pytest.raises(UserError, match="not 0/1"):
        load_arguments(write_tsv(tmp_path / "b.tsv", HEADER, [["C", "against", "P", 2] + [0] * 9]))
    with pytest.raises(UserError, match="stance"):
        load_arguments(write_tsv(tmp_path / "s.tsv", HEADER, [["C", "maybe", "P", 1] + [0] * 9]))
    with pytest.raises(UserError, match="not found"):
        load_arguments(tmp_path / "nope.tsv")
    with pytest.raises(UserError) as info:
        load_arguments(write_tsv(tmp_path / "z2.tsv", HEADER, [["C", "against", "P"] + [0] * 10]))
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- Touche23

LEVEL2 = list(LEVEL2_TO_BASIC)


def touche(tmp_path: Path, split: str = "training", rows=None, drop: str | None = None) -> Path:
    rows = rows or [
        ("A01", "We should X", "in favor of", "because X", {"Face": 1}),
        ("A02", "We should Y", "against", "because not Y", {"Humility": 1, "Universalism: nature": 1}),
        ("A03", "We should Z", "in favor of", "Z is fun", {"Hedonism": 1, "Self-direction: action": 1}),
    ]
    write_tsv(tmp_path / f"arguments-{split}.tsv", ["Argument ID", "Conclusion", "Stance", "Premise"],
              [r[:4] for r in rows])
    header = ["Argument ID"] + [c for c in LEVEL2 if c != drop]
    write_tsv(tmp_path / f"labels-{split}.tsv", header,
              [[r[0]] + [r[4].get(c, 0) for c in LEVEL2 if c != drop] for r in rows])
    return tmp_path / f"arguments-{split}.tsv"


def test_touche_level2_collapse_follows_the_table(tmp_path: Path) -> None:
    args = load_arguments(touche(tmp_path))
    by_id = {a.id: a for a in args}
    assert by_id["A01"].values == ("power",)                       # Face -> power
    assert by_id["A02"].values == ("tradition", "universalism")    # Humility -> tradition
    assert by_id["A03"].values == ("hedonism", "self_direction")
    assert "| Face | Power |" in mapping_table() and "| Humility | Tradition |" in mapping_table()
    # another mapping can be passed, e.g. the circle-neighbours reading of Face
    alt = dict(LEVEL2_TO_BASIC, Face=("power", "security"))
    assert {a.id: a for a in load_arguments(tmp_path / "arguments-training.tsv", level2_map=alt)}["A01"].values \
        == ("power", "security")


def test_touche_directory_loads_splits_in_order_and_skips_unlabelled_split(tmp_path: Path) -> None:
    touche(tmp_path, "validation", [("B01", "C", "against", "P", {"Achievement": 1})])
    touche(tmp_path, "training")
    write_tsv(tmp_path / "arguments-test.tsv", ["Argument ID", "Conclusion", "Stance", "Premise"],
              [["T01", "C", "against", "P"]])
    assert [a.id for a in load_arguments(tmp_path)] == ["A01", "A02", "A03", "B01"]


def test_touche_bad_inputs(tmp_path: Path) -> None:
    path = touche(tmp_path, drop="Humility")
    with pytest.raises(UserError, match="'Humility'"):
        load_arguments(path)
    (tmp_path / "labels-training.tsv").unlink()
    with pytest.raises(UserError, match="labels-training.tsv"):
        load_arguments(path)
    other = tmp_path / "x"
    other.mkdir()
    touche(other, rows=[("A01", "C", "against", "P", {})])
    with pytest.raises(UserError, match="no value label"):
        load_arguments(other / "arguments-training.tsv")


def test_to_dataset_round_trip() -> None:
    args = [Argument("1", "C", "against", "P", {v: int(v == "power") for v in VALUES})]
    ds = to_dataset(args)
    assert ds.num_rows == 1 and ds[0]["power"] == 1 and ds[0]["premise"] == "P"


# ----------------------------------------------------------------------------- packaged and real data

@pytest.mark.skipif(not OURS.exists(), reason=f"{OURS.name} not written yet")
def test_packaged_corpus_loads() -> None:
    args = load_arguments(OURS)
    assert len(args) >= 400
    assert all(n > 0 for n in label_counts(args).values())


@pytest.mark.realdata
@pytest.mark.skipif(not VALUE_EVAL.exists(), reason=f"real data {VALUE_EVAL} absent (only on the build machine)")
def test_realdata_value_eval_counts_match_independent_csv_read() -> None:
    args = load_arguments(VALUE_EVAL)
    assert len(args) == 7374
    with open(VALUE_EVAL, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        sums = {name: 0 for name in HEADER[3:]}
        n = 0
        for row in reader:
            n += 1
            for name in sums:
                sums[name] += int(row[name])
    assert n == 7374
    expected = {name.lower().replace("-", "_"): total for name, total in sums.items()}
    assert label_counts(args) == expected
    assert len({a.id for a in args}) == 7374


SPLITS = REALDATA / "argument_generation"


@pytest.mark.realdata
@pytest.mark.skipif(not SPLITS.exists(), reason=f"real data {SPLITS} absent (only on the build machine)")
def test_realdata_authors_splits_partition_the_value_eval_corpus() -> None:
    """The release's train/valid/test files load with the same reader, and together they are
    exactly the 7,374 arguments of valueEval_10.csv with the same labels (ids = its row index)."""
    splits = {name: load_arguments(path) for name, path in [("train", SPLITS / "value_split" / "train.csv"),
                                                             ("valid", SPLITS / "value_split" / "valid.csv"),
                                                             ("test", SPLITS / "test.csv")]}
    assert {name: len(args) for name, args in splits.items()} == {"train": 5899, "valid": 738, "test": 737}
    ids = [a.id for args in splits.values() for a in args]
    assert len(set(ids)) == len(ids) == 7374
    whole = {a.id: a for a in load_arguments(VALUE_EVAL)}
    assert set(ids) == set(whole)
    assert all(a.labels == whole[a.id].labels and a.premise == whole[a.id].premise for args in splits.values() for a in args)
