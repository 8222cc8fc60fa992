"""Extreme anchors, JSD nearest respondents, names, manifest, value structure."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from valueharm.core.errors import UserError
from valueharm.core.values import CIRCUMPLEX_ORDER, HIGHER_ORDER, VALUES
from valueharm.data import survey as S
from valueharm.profiles import selection as P

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(
    not (REALDATA / "ess.csv").exists(), reason=f"real data folder {REALDATA} absent (only on the build machine)"
)
NAME_RE = re.compile(r"^[a-z][a-z_]*(-r\d{2,})?$")


def make_scores(matrix: np.ndarray, orientation: str = "reversed") -> S.Scores:
    matrix = np.asarray(matrix, dtype=float)
    return S.Scores(
        matrix, [f"k{i}" for i in range(len(matrix))], np.arange(len(matrix)), orientation, False, len(matrix)
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[S.Survey, S.Scores, Path]:
    out = tmp_path_factory.mktemp("syn")
    S.write_synthetic_survey(out)
    path = out / S.SYNTHETIC_ITEMS_FILE
    survey = S.load_items(path)
    return survey, S.score(survey, "reversed"), path


# ---------------------------------------------------------------------------------------------
# anchors, names, specs


def test_anchor_vectors() -> None:
    hed = P.anchor_vector("hedonism")
    assert hed[VALUES.index("hedonism")] == 6 and hed.sum() == 6 + 9
    oc = P.anchor_vector("openness_to_change")
    assert [VALUES[i] for i in np.flatnonzero(oc == 6)] == ["self_direction", "stimulation"]
    assert set(np.unique(oc)) == {1.0, 6.0}
    assert P.anchor_vector("Self-Enhancement").sum() == 3 * 6 + 7


def test_profile_names_are_matrix_safe() -> None:
    assert P.profile_name("hedonism", 0) == "hedonism"
    assert P.profile_name("Hed", 1) == "hedonism-r01"
    assert P.profile_name("openness to change", 10) == "openness_to_change-r10"
    names = P.profile_names("all", "all", 10)
    assert len(names) == 154 == len(set(names))
    assert all(NAME_RE.match(n) for n in names)
    assert P.profile_names("hedonism,power", [0, 2], 3) == ["hedonism", "hedonism-r02", "power", "power-r02"]


def test_parse_anchors() -> None:
    assert P.parse_anchors("all") == VALUES + tuple(HIGHER_ORDER)
    assert P.parse_anchors("values") == VALUES
    assert P.parse_anchors("groups") == tuple(HIGHER_ORDER)
    assert P.parse_anchors("power, Hed ,conservation") == ("hedonism", "power", "conservation")
    assert P.parse_anchors(["SD", "groups"]) == ("self_direction",) + tuple(HIGHER_ORDER)
    with pytest.raises(UserError, match="unknown value name 'hedonsim'.*did you mean hedonism.*valid names"):
        P.parse_anchors("hedonsim")
    with pytest.raises(UserError, match="no anchors"):
        P.parse_anchors(" , ")


def test_parse_ranks() -> None:
    assert P.parse_ranks("all", 3) == (0, 1, 2, 3)
    assert P.parse_ranks([2, 0, 2], 3) == (0, 2)
    assert P.parse_ranks("1,3", 3) == (1, 3)
    with pytest.raises(UserError, match="outside 0..3"):
        P.parse_ranks([4], 3)
    with pytest.raises(UserError, match="not a whole number"):
        P.parse_ranks(["x"], 3)
    with pytest.raises(UserError, match="nearest must be"):
        P.check_nearest(-1)
    with pytest.raises(UserError, match="larger than the 5 complete respondents"):
        P.check_nearest(6, 5)


# ---------------------------------------------------------------------------------------------
# JSD and nearest


def test_jsd_matches_scipy() -> None:
    rng = np.random.RandomState(1)
    a = rng.uniform(1, 6, size=(4, 10))
    r = rng.uniform(1, 6, size=(50, 10))
    d = P.jsd_matrix(a, r)
    for i in range(4):
        for j in range(0, 50, 7):
            assert d[i, j] == pytest.approx(jensenshannon(a[i], r[j], base=2) ** 2, abs=1e-12)
    assert P.jsd(a[0], a[0] * 3) == pytest.approx(0.0, abs=1e-15)  # scale-free
    assert P.jsd(a[0], r[0]) == pytest.approx(d[0, 0])
    assert (d >= 0).all() and (d <= 1).all()


def test_nearest_equals_stable_brute_force_with_ties() -> None:
    rng = np.random.RandomState(2)
    base = rng.randint(1, 7, size=(40, 10)).astype(float)
    r = np.concatenate([base, base[::-1], base * 0.5 + 0.5 * base])  # many exact duplicates
    anchors = np.stack([P.anchor_vector(a) for a in P.ANCHOR_NAMES])
    idx, dist = P.nearest(anchors, r, 12)
    full = P.jsd_matrix(anchors, r)
    for i in range(len(anchors)):
        expected = np.argsort(np.round(full[i], P.TIE_DECIMALS), kind="stable")[:12]
        np.testing.assert_array_equal(idx[i], expected)
        np.testing.assert_allclose(dist[i], full[i, expected])
    # identical rows: the earlier one wins
    dup = np.array([[1, 2, 3, 4, 5, 6, 1, 2, 3, 4], [6, 1, 1, 1, 1, 1, 1, 1, 1, 1], [6, 1, 1, 1, 1, 1, 1, 1, 1, 1.0]])
    idx, dist = P.nearest(P.anchor_vector("achievement")[None], dup[[0, 2, 1]], 2)
    assert list(idx[0]) == [1, 2] and dist[0, 0] == 0.0
    assert P.nearest(anchors, r, 0)[0].shape == (14, 0)


def test_ties_from_permuted_vectors_follow_file_order() -> None:
    """Permutations off the anchor value have equal divergence up to float noise (an ulp)."""
    rng = np.random.RandomState(0)
    base = np.array([1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5.5, 5 / 3])
    rows = np.array([np.insert(rng.permutation(base), VALUES.index("hedonism"), 5.0) for _ in range(200)])
    rows = np.concatenate([np.full((1, 10), 3.0), rows])  # a worse respondent first
    idx, dist = P.nearest(P.anchor_vector("hedonism")[None], rows, 10)
    assert list(idx[0]) == list(range(1, 11))
    assert np.ptp(dist[0]) < 1e-12


# ---------------------------------------------------------------------------------------------
# selection and manifest


def test_manifest_contract(synthetic) -> None:
    _, scores, _ = synthetic
    manifest = P.select_profiles(scores, 10)
    assert manifest["values"] == list(VALUES)
    profiles = manifest["profiles"]
    assert len(profiles) == 154
    assert [p["name"] for p in profiles] == P.profile_names("all", "all", 10)
    for p in profiles:
        assert set(p) == {"name", "anchor", "rank", "scores", "jsd", "respondent"}
        assert list(p["scores"]) == list(VALUES)
        if p["rank"] == 0:
            assert p["jsd"] is None and p["respondent"] is None
            assert p["scores"] == {v: float(x) for v, x in zip(VALUES, P.anchor_vector(p["anchor"]))}
        else:
            assert isinstance(p["jsd"], float) and p["respondent"] in scores.keys
    by_anchor: dict[str, list[float]] = {}
    for p in profiles:
        if p["rank"]:
            by_anchor.setdefault(p["anchor"], []).append(p["jsd"])
    assert all(v == sorted(v) for v in by_anchor.values())
    json.dumps(manifest, allow_nan=False)


def test_selection_subset_and_errors(synthetic) -> None:
    _, scores, _ = synthetic
    sub = P.select_profiles(scores, 5, anchors="power,conservation", ranks=[0, 5])
    assert [p["name"] for p in sub["profiles"]] == ["power", "power-r05", "conservation", "conservation-r05"]
    full = P.select_profiles(scores, 5)
    same = {p["name"]: p for p in full["profiles"]}
    assert sub["profiles"][1] == same["power-r05"]
    small = make_scores(np.full((3, 10), 2.0))
    with pytest.raises(UserError, match="nearest = 4 is larger than the 3 complete respondents"):
        P.select_profiles(small, 4)
    with pytest.raises(UserError, match="unknown value name"):
        P.select_profiles(small, 1, anchors="kindness")


def test_reversed_close_respondents_hold_the_value(synthetic) -> None:
    """With reversed orientation the close respondents rate the anchor value highest; with raw
    orientation (the released defect) they rate it *least* important on the importance scale."""
    survey, scores, _ = synthetic
    rev = P.select_profiles(scores, 10, anchors="values")
    raw = P.select_profiles(S.score(survey, "raw"), 10, anchors="values")
    for manifest, expect_high in ((rev, True), (raw, False)):
        for p in manifest["profiles"]:
            if p["rank"] == 0:
                continue
            importance = {v: (x if manifest is rev else 7 - x) for v, x in p["scores"].items()}
            mean_other = np.mean([x for v, x in importance.items() if v != p["anchor"]])
            assert (importance[p["anchor"]] > mean_other) == expect_high, p["name"]


def test_selection_is_deterministic(synthetic) -> None:
    _, scores, _ = synthetic
    assert P.select_profiles(scores, 10) == P.select_profiles(scores, 10)


# ---------------------------------------------------------------------------------------------
# value structure and outputs


def test_value_structure_shows_the_circle(synthetic) -> None:
    _, scores, _ = synthetic
    structure = P.value_structure(scores)
    pts = {p["value"]: (p["x"], p["y"]) for p in structure["points"]}
    angles = [math.atan2(pts[v][1], pts[v][0]) for v in CIRCUMPLEX_ORDER]
    steps = [((b - a + math.pi) % (2 * math.pi)) - math.pi for a, b in zip(angles, angles[1:] + angles[:1])]
    assert all(s > 0 for s in steps) or all(s < 0 for s in steps)  # monotone around the circle
    assert abs(sum(steps)) == pytest.approx(2 * math.pi, abs=1e-6)
    assert structure["correlations"]["power"]["universalism"] < 0
    csv = P.structure_csv(structure)
    assert csv.splitlines()[0] == "value,x,y,group" and len(csv.splitlines()) == 11


def test_write_outputs_byte_stable(synthetic, tmp_path: Path) -> None:
    survey, scores, _ = synthetic
    manifest = P.select_profiles(scores, 3, anchors="groups")
    first = P.write_outputs(tmp_path / "a", manifest, survey, scores, {"nearest_k": 3})
    second = P.write_outputs(tmp_path / "b", manifest, survey, scores, {"nearest_k": 3})
    names = sorted(x.name for x in first.iterdir())
    assert names == ["manifest.json", "survey_summary.json", "value_structure.csv", "value_structure.png"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "value_structure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((first / "survey_summary.json").read_text())
    assert summary["selection"]["n_profiles"] == 16 and summary["params"] == {"nearest": 3}
    assert set(summary["values"]) == set(VALUES) and summary["values"]["power"]["sd"] > 0
    assert json.loads((first / "manifest.json").read_text()) == manifest


def test_settings_from_params() -> None:
    got = P.settings_from_params({"survey": "s.csv", "orientation": "raw", "nearest": 3})
    assert got == {
        "survey": "s.csv",
        "fmt": "items",
        "orientation": "raw",
        "centre": False,
        "nearest_k": 3,
        "anchors": "all",
        "ranks": "all",
    }
    with pytest.raises(UserError, match="unknown keys: nearst"):
        P.settings_from_params({"survey": "s.csv", "nearst": 3})
    with pytest.raises(UserError, match="profiles.survey"):
        P.settings_from_params({})


# ---------------------------------------------------------------------------------------------
# real data


@pytest.mark.realdata
@needs_realdata
def test_realdata_selection_on_items_and_scores() -> None:
    manifest_items, _, _ = P.select_from_file(REALDATA / "ess.csv", "items", "raw", 10)
    manifest_scores, _, dist = P.select_from_file(REALDATA / "ess_distribution.csv", "scores", "raw", 10)
    for manifest in (manifest_items, manifest_scores):
        assert len(manifest["profiles"]) == 154
    # paper setting on the released vectors: close respondents are near the anchor by JSD
    close = [p for p in manifest_scores["profiles"] if p["rank"] == 1]
    assert all(p["jsd"] < 0.2 for p in close)
    # the released defect: in raw orientation the "hedonism" respondents score hedonism 6 =
    # "not like me at all", i.e. they least value hedonism
    hed = [p for p in manifest_scores["profiles"] if p["anchor"] == "hedonism" and p["rank"] > 0]
    assert all(p["scores"]["hedonism"] >= max(v for k, v in p["scores"].items() if k != "hedonism") for p in hed)
    assert dist.n_complete == 20466
