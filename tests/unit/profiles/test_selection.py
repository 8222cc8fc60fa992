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
        "ties": "file",
    }
    assert P.settings_from_params({"survey": "s.csv", "ties": "release"})["ties"] == "release"
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


# ---------------------------------------------------------------------------------------------
# tie order of the released selection (docs/paper.md, "Ties")


def test_release_divergence_is_bit_identical_to_scipy_entropy() -> None:
    """The vectorised key must equal the release's per-row scipy.stats.entropy calls to the last bit:
    its tie order depends on which mathematically equal divergences differ by an ulp."""
    from scipy.stats import entropy

    rng = np.random.RandomState(4)
    rows = np.round(rng.uniform(1, 6, size=(300, 10)) * 2) / 2
    rows[:100, 1:4] = rows[:100, 3:0:-1]  # permutations: the ulp-sensitive case
    for name in ("power", "conservation"):
        a = P.anchor_vector(name)
        got = P.release_divergence(a, rows)
        for j, r in enumerate(rows):
            p, q = a / a.sum(), r / r.sum()
            m = (p + q) / 2
            assert got[j] == 0.5 * entropy(p, m) + 0.5 * entropy(q, m), (name, j)
    np.testing.assert_allclose(got * np.log2(np.e), P.jsd_matrix(a[None], rows)[0], atol=1e-12)
    for n in (3, 8, 17):  # other widths take the other branches of the pairwise sum
        x = rng.uniform(0.1, 2, size=(20, n))
        assert [float(v) for v in P._pairwise_sum_rows(x)] == [float(np.sum(row)) for row in x]


def test_release_ties_use_unstable_quicksort_over_the_whole_table() -> None:
    rng = np.random.RandomState(0)
    base = np.array([1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5.5, 5 / 3])
    rows = np.array([np.insert(rng.permutation(base), VALUES.index("power"), 5.0) for _ in range(300)])
    anchor = P.anchor_vector("power")[None]
    idx, dist = P.nearest(anchor, rows, 10, ties="release")
    expected = np.argsort(P.release_divergence(anchor[0], rows), kind="quicksort")[:10]
    np.testing.assert_array_equal(idx[0], expected)
    np.testing.assert_allclose(dist[0], P.jsd_matrix(anchor, rows)[0, expected])
    file_idx, _ = P.nearest(anchor, rows, 10)
    assert sorted(np.round(P.jsd_matrix(anchor, rows)[0, idx[0]], 9)) == sorted(
        np.round(P.jsd_matrix(anchor, rows)[0, file_idx[0]], 9)
    )  # the same divergences, possibly other respondents among equals
    with pytest.raises(UserError, match="ties must be one of file, release"):
        P.nearest(anchor, rows, 3, ties="stable")
    with pytest.raises(UserError, match="ties must be one of"):
        P.select_profiles(make_scores(rows), 3, ties="random")


# The released selection (the study's data/extreme_distributions.csv, rows close_<X>[_k]; read from
# the public copy in github.com/Ai-pre/Unintended-Harms-LLM-reproduction at d3cd41d): the first 12 hex
# digits of sha256 over each close profile's 10 scores ("%.6f" joined by commas, canonical value
# order). Digests rather than the scores, so no survey-derived data is shipped in the project.
RELEASED_CLOSE_DIGESTS = {
    "achievement-r01": "70068cf76753",
    "achievement-r02": "a346f032281c",
    "achievement-r03": "5dd90f300313",
    "achievement-r04": "49b74c3d39ff",
    "achievement-r05": "bc5a873ce8cf",
    "achievement-r06": "53176cff1bc1",
    "achievement-r07": "89cb9250651f",
    "achievement-r08": "110f1e409261",
    "achievement-r09": "40708a00482b",
    "achievement-r10": "78179e4dbbc6",
    "benevolence-r01": "835909985099",
    "benevolence-r02": "c2c09bb7cbdc",
    "benevolence-r03": "3639767319fc",
    "benevolence-r04": "9da302573910",
    "benevolence-r05": "e4590cfbda75",
    "benevolence-r06": "a7bffd583378",
    "benevolence-r07": "1ea149d0781a",
    "benevolence-r08": "dec84219a906",
    "benevolence-r09": "9acd8825ae91",
    "benevolence-r10": "d260a23b4351",
    "conformity-r01": "24578992e5bc",
    "conformity-r02": "3f87815cdb2b",
    "conformity-r03": "e50901cb2489",
    "conformity-r04": "b9e3765e86a2",
    "conformity-r05": "37a05898ba47",
    "conformity-r06": "ffab54681ddf",
    "conformity-r07": "d2b633e7ebac",
    "conformity-r08": "987ab6a03887",
    "conformity-r09": "7d0779dac509",
    "conformity-r10": "f6597f1df958",
    "hedonism-r01": "4805bebb4a10",
    "hedonism-r02": "b9875ce47a67",
    "hedonism-r03": "37e3494e60c1",
    "hedonism-r04": "828773766184",
    "hedonism-r05": "a1a08a552e1a",
    "hedonism-r06": "3adf79aa45fd",
    "hedonism-r07": "c63249579748",
    "hedonism-r08": "d5fa56fb6a3d",
    "hedonism-r09": "68953e072e86",
    "hedonism-r10": "1abb631ef51a",
    "power-r01": "4a14b00833f6",
    "power-r02": "3304f9a74662",
    "power-r03": "fac0b1061fac",
    "power-r04": "bda67cbe801d",
    "power-r05": "794decb8fa47",
    "power-r06": "ea88a90c4761",
    "power-r07": "4bfcba54885e",
    "power-r08": "ad46ef8da106",
    "power-r09": "da1bcb3cacb8",
    "power-r10": "075ba5c4e1d9",
    "security-r01": "5130e3c880c2",
    "security-r02": "6e1de590d9ab",
    "security-r03": "b8623d71006b",
    "security-r04": "960f5a88f9b1",
    "security-r05": "c972d05ceeef",
    "security-r06": "5ab093859150",
    "security-r07": "69d21b057b00",
    "security-r08": "b5bf17a4b207",
    "security-r09": "78aa12ab87a3",
    "security-r10": "9b5dd899e801",
    "self_direction-r01": "33d03d23755a",
    "self_direction-r02": "a97786be41fa",
    "self_direction-r03": "613e753af554",
    "self_direction-r04": "555ed25c51df",
    "self_direction-r05": "e82d04e8c2a4",
    "self_direction-r06": "828fb2fdf0ce",
    "self_direction-r07": "f23bde76ec99",
    "self_direction-r08": "8c1a0866098c",
    "self_direction-r09": "033d12b13130",
    "self_direction-r10": "54a0545d568f",
    "stimulation-r01": "b43628229d77",
    "stimulation-r02": "cde8217e9a51",
    "stimulation-r03": "4bcfda300e1d",
    "stimulation-r04": "09a3fd0fed5f",
    "stimulation-r05": "6ce98d190079",
    "stimulation-r06": "70737bffc3e9",
    "stimulation-r07": "527750691124",
    "stimulation-r08": "a42071b785f7",
    "stimulation-r09": "c70b2caaea62",
    "stimulation-r10": "d1df78323ad8",
    "tradition-r01": "3de95c10963e",
    "tradition-r02": "4ac2dcf2a483",
    "tradition-r03": "f53ea5e8e9b6",
    "tradition-r04": "b675652b4dfd",
    "tradition-r05": "c906853ada57",
    "tradition-r06": "a6c94f19b6da",
    "tradition-r07": "7cd024629f7c",
    "tradition-r08": "73365fd39c08",
    "tradition-r09": "cf795325db56",
    "tradition-r10": "d9762d010139",
    "universalism-r01": "9e095cd9bc6e",
    "universalism-r02": "4f654af52783",
    "universalism-r03": "f9a21a6a14fc",
    "universalism-r04": "cd13d8dbbb64",
    "universalism-r05": "f3b1e7591958",
    "universalism-r06": "ac341bf44496",
    "universalism-r07": "459433ac8ba4",
    "universalism-r08": "28f889f8249f",
    "universalism-r09": "a5c2fd3b308a",
    "universalism-r10": "d8d224e9ca2a",
    "openness_to_change-r01": "70737bffc3e9",
    "openness_to_change-r02": "a5a0ce68d1ea",
    "openness_to_change-r03": "c8a135cb0b0c",
    "openness_to_change-r04": "7e81539a4c60",
    "openness_to_change-r05": "2998ebe126b9",
    "openness_to_change-r06": "ffeec60d6cab",
    "openness_to_change-r07": "11573e4cc201",
    "openness_to_change-r08": "dec615163ea4",
    "openness_to_change-r09": "fecfa12ece37",
    "openness_to_change-r10": "2b363cb39735",
    "self_enhancement-r01": "5f5fd9844b21",
    "self_enhancement-r02": "2ff6d78cf56e",
    "self_enhancement-r03": "0d17765183b8",
    "self_enhancement-r04": "fd3ee5863a19",
    "self_enhancement-r05": "713f9bbd7ad6",
    "self_enhancement-r06": "22c7b2143a03",
    "self_enhancement-r07": "61ff90e0c919",
    "self_enhancement-r08": "107eaec17d6e",
    "self_enhancement-r09": "7e61ab18ecd7",
    "self_enhancement-r10": "385dac11c425",
    "conservation-r01": "a3cbd5f479f8",
    "conservation-r02": "380aa655ed74",
    "conservation-r03": "765b21c51740",
    "conservation-r04": "42978205f56f",
    "conservation-r05": "7cf1a1cea0db",
    "conservation-r06": "feca49b828a4",
    "conservation-r07": "b7bdf5d81b79",
    "conservation-r08": "4849fa61255b",
    "conservation-r09": "df31a3c746d1",
    "conservation-r10": "182459d39182",
    "self_transcendence-r01": "c2c09bb7cbdc",
    "self_transcendence-r02": "4f654af52783",
    "self_transcendence-r03": "38a906d9c1a8",
    "self_transcendence-r04": "54aa1c1ed3d5",
    "self_transcendence-r05": "9c0ae4fdd60d",
    "self_transcendence-r06": "28b06621966d",
    "self_transcendence-r07": "097f19c0764d",
    "self_transcendence-r08": "3c07cfd07130",
    "self_transcendence-r09": "455bc0b2bff4",
    "self_transcendence-r10": "459433ac8ba4",
}


def _vector_digest(scores: dict[str, float]) -> str:
    import hashlib

    text = ",".join(f"{scores[v]:.6f}" for v in VALUES)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@pytest.mark.realdata
def test_release_ties_reproduce_the_released_close_profiles(realdata: Path) -> None:
    manifest, _, _ = P.select_from_file(realdata / "ess_distribution.csv", "scores", "raw", 10, ties="release")
    got = {p["name"]: _vector_digest(p["scores"]) for p in manifest["profiles"] if p["rank"] > 0}
    assert len(RELEASED_CLOSE_DIGESTS) == 140 and set(got) == set(RELEASED_CLOSE_DIGESTS)
    assert [n for n in got if got[n] != RELEASED_CLOSE_DIGESTS[n]] == []
    # file order differs exactly at the exact ties of power ranks 3-5
    manifest, _, _ = P.select_from_file(realdata / "ess_distribution.csv", "scores", "raw", 10, ties="file")
    got = {p["name"]: _vector_digest(p["scores"]) for p in manifest["profiles"] if p["rank"] > 0}
    assert sorted(n for n in got if got[n] != RELEASED_CLOSE_DIGESTS[n]) == ["power-r03", "power-r04", "power-r05"]
