"""Survey loading, orientation, centring, missing codes, and the synthetic survey."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from valueharm.data import survey as S
from valueharm.core.errors import UserError
from valueharm.core.values import CIRCUMPLEX_ORDER, VALUES

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(not (REALDATA / "ess.csv").exists(),
                                    reason=f"real data folder {REALDATA} absent (only on the build machine)")


def item_row(**overrides: int) -> dict[str, int]:
    row = {item: 3 for item in S.ITEM_ORDER}
    row.update(overrides)
    return row


def write_items(path: Path, rows: list[dict], suffix: str = "", extra: dict[str, list] | None = None) -> Path:
    df = pd.DataFrame(rows)
    df.columns = [c + suffix if c in S.ITEM_ORDER else c for c in df.columns]
    for name, col in (extra or {}).items():
        df.insert(0, name, col)
    df.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------------------------
# item key and scoring


def test_item_key_covers_each_item_once() -> None:
    used = [i for items in S.ITEM_KEY.values() for i in items]
    assert sorted(used) == sorted(S.ITEM_ORDER) and len(used) == 21
    assert set(S.ITEM_KEY) == set(VALUES)


def test_scores_are_plain_item_means_raw() -> None:
    rng = np.random.RandomState(0)
    codes = rng.randint(1, 7, size=(5, 21)).astype(float)
    scores, clipped = S.score_items(codes, "raw")
    assert clipped == 0
    col = {item: j for j, item in enumerate(S.ITEM_ORDER)}
    for i in range(5):
        for k, value in enumerate(VALUES):
            expected = np.mean([codes[i, col[it]] for it in S.ITEM_KEY[value]])
            assert scores[i, k] == pytest.approx(expected)


def test_hand_made_rows_orientation_and_centring() -> None:
    row = item_row(ipgdtim=1, impfun=2, ipeqopt=6, ipudrst=5, impenv=4)  # hedonism 1.5, universalism 5 (raw)
    codes = np.array([[row[i] for i in S.ITEM_ORDER]], dtype=float)
    raw, _ = S.score_items(codes, "raw")
    rev, _ = S.score_items(codes, "reversed")
    h, u, p = VALUES.index("hedonism"), VALUES.index("universalism"), VALUES.index("power")
    assert raw[0, h] == 1.5 and raw[0, u] == 5.0 and raw[0, p] == 3.0
    assert rev[0, h] == 5.5 and rev[0, u] == 2.0 and rev[0, p] == 4.0  # 7 - x
    # centring: value score - mean over all 21 items + 3.5
    mrat_raw = codes.mean()
    cen, clipped = S.score_items(codes, "raw", centre=True)
    assert cen[0, h] == pytest.approx(1.5 - mrat_raw + 3.5)
    assert cen[0, u] == pytest.approx(5.0 - mrat_raw + 3.5)
    cen_rev, _ = S.score_items(codes, "reversed", centre=True)
    assert cen_rev[0, h] == pytest.approx(5.5 - (7 - mrat_raw) + 3.5)
    np.testing.assert_allclose(cen_rev, 7 - cen)  # orientation and centring commute
    assert clipped == 0


def test_centring_clips_to_scale_and_counts() -> None:
    row = item_row(**{i: 6 for i in S.ITEM_ORDER})
    row.update(ipgdtim=1, impfun=1)  # hedonism 1, everything else 6: mrat ~ 5.52
    codes = np.array([[row[i] for i in S.ITEM_ORDER]], dtype=float)
    cen, clipped = S.score_items(codes, "raw", centre=True)
    assert cen.min() >= 1.0 and cen.max() <= 6.0
    assert cen[0, VALUES.index("hedonism")] == 1.0 and clipped == 1


def test_missing_item_makes_value_nan() -> None:
    codes = np.full((1, 21), 2.0)
    codes[0, S.ITEM_ORDER.index("impfun")] = np.nan
    scores, _ = S.score_items(codes, "raw")
    assert np.isnan(scores[0, VALUES.index("hedonism")])
    assert np.isfinite(np.delete(scores[0], VALUES.index("hedonism"))).all()


# ---------------------------------------------------------------------------------------------
# items loading


def test_load_items_suffix_case_missing_codes_and_keys(tmp_path: Path) -> None:
    rows = [item_row(), item_row(ipcrtiv=7), item_row(impfun=88), item_row(imprich=66, ipeqopt=9), item_row(ipshabt=2)]
    path = write_items(tmp_path / "ess.csv", rows, suffix="a",
                       extra={"anweight": [1, 1, 1, 1, 2], "IDNO": [5, 6, 5, 7, 8], "cntry": ["DE", "DE", "FR", "FR", "FR"]})
    text = path.read_text().replace("ipcrtiva", " IPCRTIVA ")
    lines = text.splitlines()
    path.write_text("\n".join(lines[:-1] + [lines[-1].rsplit(",", 1)[0] + ","]) + "\n")  # last cell blank
    survey = S.load_items(path)
    assert survey.n_rows == 5
    assert survey.keys == ["DE:5", "DE:6", "FR:5", "FR:7", "FR:8"]
    assert survey.missing["ipcrtiv"] == 1 and survey.missing["impfun"] == 2  # 88 and the blank
    assert survey.missing["imprich"] == 1 and survey.missing["ipeqopt"] == 1
    assert sum(survey.missing.values()) == 5
    assert list(survey.weights.columns) == ["anweight"]
    scores = S.score(survey, "raw")
    assert scores.n_complete == 1 and scores.keys == ["DE:5"] and list(scores.rows) == [0]
    np.testing.assert_allclose(scores.matrix[0], 3.0)
    summary = S.summarise(survey, scores)
    assert summary["n_rows"] == 5 and summary["n_complete"] == 1 and summary["n_incomplete"] == 4
    assert summary["missing_cells_total"] == 5
    assert summary["respondents_missing_by_value"]["hedonism"] == 2
    assert summary["values"]["power"]["mean"] == 3.0
    assert summary["countries"] == ["DE", "FR"]


def test_keys_fall_back_to_idno_then_row_and_disambiguate(tmp_path: Path) -> None:
    s1 = S.load_items(write_items(tmp_path / "a.csv", [item_row(), item_row()], extra={"idno": [11, 12]}))
    assert s1.keys == ["11", "12"]
    s2 = S.load_items(write_items(tmp_path / "b.csv", [item_row(), item_row()]))
    assert s2.keys == ["row1", "row2"]
    s3 = S.load_items(write_items(tmp_path / "c.csv", [item_row(), item_row(), item_row()], extra={"idno": [3, 3, 4]}))
    assert s3.keys == ["3@row1", "3@row2", "4"]


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("   \n\n", "is empty"),
])
def test_empty_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        S.load_items(path)


def test_header_only_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(",".join(S.ITEM_ORDER) + "\n")
    with pytest.raises(UserError, match="no respondents"):
        S.load_items(path)
    with pytest.raises(UserError, match="not found"):
        S.load_items(tmp_path / "nope.csv")


def test_missing_item_columns_are_named(tmp_path: Path) -> None:
    rows = [{k: v for k, v in item_row().items() if k not in ("impfun", "ipadvnt")}]
    path = write_items(tmp_path / "m.csv", rows)
    with pytest.raises(UserError) as info:
        S.load_items(path)
    assert "ipadvnt, impfun" in str(info.value) and "\n" not in str(info.value)


def test_non_numeric_cell_names_row_and_column(tmp_path: Path) -> None:
    rows = [item_row(), item_row(), item_row()]
    path = write_items(tmp_path / "n.csv", rows)
    df = pd.read_csv(path, dtype=str)
    df.loc[1, "iprspot"] = "often"
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"'often' in column iprspot, data row 2 \(line 3\)"):
        S.load_items(path)


@pytest.mark.parametrize("bad", ["0", "2.5", "-1"])
def test_non_ess_codes_rejected(tmp_path: Path, bad: str) -> None:
    path = write_items(tmp_path / "c.csv", [item_row(), item_row()])
    df = pd.read_csv(path, dtype=str)
    df.loc[0, "ipfrule"] = bad
    df.to_csv(path, index=False)
    with pytest.raises(UserError, match="column ipfrule, data row 1 .* not an ESS code"):
        S.load_items(path)


def test_no_complete_respondent(tmp_path: Path) -> None:
    path = write_items(tmp_path / "x.csv", [item_row(ipcrtiv=8), item_row(impfun=77)])
    survey = S.load_items(path)
    with pytest.raises(UserError, match="no complete respondent"):
        S.score(survey)


def test_bad_choices() -> None:
    with pytest.raises(UserError, match="orientation must be one of raw, reversed"):
        S.orient(np.ones(3), "flipped")
    with pytest.raises(UserError, match="format must be one of items, scores"):
        S.load_survey("x.csv", "wide")


def test_both_suffixed_and_plain_rejected(tmp_path: Path) -> None:
    path = write_items(tmp_path / "d.csv", [item_row()], extra={"ipcrtiva": [2]})
    with pytest.raises(UserError, match="both ipcrtiv and ipcrtiva"):
        S.load_items(path)


def test_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    pd.DataFrame([item_row(), item_row(impfun=1)]).to_csv(path, sep="\t", index=False)
    assert S.score(S.load_items(path), "raw").n_complete == 2


# ---------------------------------------------------------------------------------------------
# scores loading


def test_load_scores_header_variants(tmp_path: Path) -> None:
    headers = ["ACHIEVEMENT", "Benevolence", "conformity", "Hedonism", "power", "Security",
               "self direction", "stimulation", "Tradition", "UNIVERSALISM"]
    path = tmp_path / "s.csv"
    path.write_text(",".join(headers) + "\n" + ",".join(["2"] * 10) + "\n" + ",".join(["3"] * 9 + [""]) + "\n")
    survey = S.load_scores(path)
    assert survey.missing["universalism"] == 1
    sc = S.score(survey, "reversed")
    assert sc.n_complete == 1
    np.testing.assert_allclose(sc.matrix[0], 5.0)  # 7 - 2
    np.testing.assert_allclose(S.score(survey, "raw").matrix[0], 2.0)
    with pytest.raises(UserError, match="centring needs item data"):
        S.score(survey, "raw", centre=True)


def test_scores_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(",".join(VALUES[:-1]) + "\n" + ",".join(["2"] * 9) + "\n")
    with pytest.raises(UserError, match="missing value columns: universalism"):
        S.load_scores(path)
    path.write_text(",".join(VALUES) + "\n" + ",".join(["2"] * 9 + ["7"]) + "\n")
    with pytest.raises(UserError, match="outside 1..6"):
        S.load_scores(path)
    path.write_text(",".join(VALUES) + "\n" + ",".join(["2"] * 9 + ["x"]) + "\n")
    with pytest.raises(UserError, match="'x' in column universalism, data row 1"):
        S.load_scores(path)


# ---------------------------------------------------------------------------------------------
# synthetic survey


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("syn") / "survey"
    S.write_synthetic_survey(out)
    return out


def test_synthetic_is_byte_identical(synthetic_dir: Path, tmp_path: Path) -> None:
    S.write_synthetic_survey(tmp_path / "again")
    for name in (S.SYNTHETIC_ITEMS_FILE, S.SYNTHETIC_META_FILE):
        assert (tmp_path / "again" / name).read_bytes() == (synthetic_dir / name).read_bytes()
    other = S.generate_synthetic_survey(seed=1, scale=0.1)
    assert not other.equals(S.generate_synthetic_survey(seed=2, scale=0.1))
    assert other.equals(S.generate_synthetic_survey(seed=1, scale=0.1))


def test_synthetic_format_and_metadata(synthetic_dir: Path) -> None:
    assert "synthetic" in S.SYNTHETIC_ITEMS_FILE and "synthetic" in S.SYNTHETIC_META_FILE
    meta = json.loads((synthetic_dir / S.SYNTHETIC_META_FILE).read_text())
    assert meta["synthetic"] is True and "SYNTHETIC" in meta["notice"]
    assert meta["seed"] == S.SYNTHETIC_SEED and meta["n"] >= 2000
    assert 0.01 <= meta["missing_cell_rate"] <= 0.03
    survey = S.load_items(synthetic_dir / S.SYNTHETIC_ITEMS_FILE)
    assert survey.n_rows == meta["n"] and len(set(survey.keys)) == survey.n_rows
    assert len(set(survey.country)) >= 4 and "anweight" in survey.weights
    raw = pd.read_csv(synthetic_dir / S.SYNTHETIC_ITEMS_FILE)[list(S.ITEM_ORDER)].to_numpy()
    assert set(np.unique(raw)) <= {1, 2, 3, 4, 5, 6, 7, 8, 9}
    assert S.score(survey).n_complete == meta["n_complete"]


def test_synthetic_circumplex_sign_structure(synthetic_dir: Path) -> None:
    survey = S.load_items(synthetic_dir / S.SYNTHETIC_ITEMS_FILE)
    scores = S.score(survey, "reversed")
    order = [VALUES.index(v) for v in CIRCUMPLEX_ORDER]
    r = np.corrcoef(scores.matrix.T)[np.ix_(order, order)]
    n = len(order)
    for k in range(n):
        assert r[k, (k + 1) % n] > 0.2, (CIRCUMPLEX_ORDER[k], CIRCUMPLEX_ORDER[(k + 1) % n])
        assert r[k, (k + n // 2) % n] < -0.2, (CIRCUMPLEX_ORDER[k], CIRCUMPLEX_ORDER[(k + n // 2) % n])
        # correlation falls with distance around the circle
        assert r[k, (k + 1) % n] > r[k, (k + 2) % n] > r[k, (k + 4) % n]


def test_synthetic_follows_importance_hierarchy(synthetic_dir: Path) -> None:
    scores = S.score(S.load_items(synthetic_dir / S.SYNTHETIC_ITEMS_FILE), "reversed")
    means = dict(zip(VALUES, scores.matrix.mean(axis=0)))
    assert means["benevolence"] > means["power"] + 1
    assert max(means, key=means.get) in {"benevolence", "universalism"}
    assert min(means, key=means.get) == "power"


# ---------------------------------------------------------------------------------------------
# real data (ESS release files)


@pytest.mark.realdata
@needs_realdata
def test_realdata_items_and_scores_load_and_agree() -> None:
    survey = S.load_items(REALDATA / "ess.csv")
    assert survey.n_rows == 22190
    assert survey.missing["ipcrtiv"] > 0
    items = S.score(survey, "raw")
    dist = S.score(S.load_scores(REALDATA / "ess_distribution.csv"), "raw")
    assert dist.n_complete == 20466
    assert 20000 < items.n_complete < survey.n_rows
    # ESS ids repeat across countries (no cntry in this file): keys are disambiguated
    assert len(set(items.keys)) == items.n_complete
    # Same kind of vectors: the released file is a subsequence of our complete-case vectors;
    # the first 300 rows agree exactly, and every released row is one of ours.
    np.testing.assert_allclose(items.matrix[:300], dist.matrix[:300], atol=1e-9)
    ours = {tuple(np.round(v, 6)) for v in items.matrix}
    sample = dist.matrix[:: 97]
    assert all(tuple(np.round(v, 6)) in ours for v in sample)
    np.testing.assert_allclose(items.matrix.mean(axis=0), dist.matrix.mean(axis=0), atol=0.02)
    # reversed orientation is 7 - raw
    np.testing.assert_allclose(S.score(survey, "reversed").matrix, 7 - items.matrix)
