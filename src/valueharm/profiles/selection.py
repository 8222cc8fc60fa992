"""The study's target value profiles: extreme anchors and their JSD-nearest survey respondents.

* Anchors (docs/paper.md, "Value profiles"): 10 single-value extremes (that value 6, all others 1)
  and 4 higher-order extremes (the group's members 6, all others 1), named by canonical name.
* For each anchor, the K respondents whose 10-value vectors have the smallest Jensen-Shannon
  divergence to it, both vectors sum-normalised; ties (equal to 12 decimals, so that floating-point
  noise cannot order them) broken by file order. ``jsd`` is
  reported as the divergence in bits (0..1), not the JS distance (its square root); the ranking
  is the same either way.
* ``ties="release"`` orders respondents as the released selection did (docs/paper.md, "Ties"): the
  divergence computed with scipy.stats.entropy's floating-point operations (natural log, so values
  that are ties mathematically may differ in the last bit, as they did there), then numpy's default
  unstable quicksort over the whole table (pandas' `sort_values` default). With the released
  ess_distribution.csv this reproduces the 140 released close profiles exactly; file order gets
  137 (power ranks 3-5 are exact ties). numpy's unstable order comes from its CPU-dispatched sort
  (x86-simd-sort on AVX2/AVX-512), so `release` is exact for the numpy build and CPU family it was
  checked on (numpy 2.4, AVX2: tests/unit/profiles/test_selection.py) and may differ elsewhere.
* The study set: which anchors (``all`` | ``values`` | ``groups`` | a list of names) and which
  ranks (``all`` = 0..K, or a list; rank 0 is the anchor itself).
* Profile names are usable as DVC matrix keys and file names and depend only on anchor and
  rank, never on data: ``hedonism`` (rank 0), ``hedonism-r01`` .. ``hedonism-r10``,
  ``openness_to_change-r03``.

The manifest is docs/design.md contract 1: ``{"values": [...], "profiles": [{"name", "anchor",
"rank", "scores", "jsd", "respondent"}]}``. Scores are in the orientation used for selection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valueharm.core.errors import UserError
from valueharm.core.values import CIRCUMPLEX_ORDER, DISPLAY, HIGHER_ORDER, VALUES, members, resolve
from valueharm.data.survey import (
    DEFAULT_ORIENTATION,
    SCALE_MAX,
    SCALE_MIN,
    Scores,
    Survey,
    respondent_scores,
    summarise,
)

ANCHOR_NAMES: tuple[str, ...] = VALUES + tuple(HIGHER_ORDER)
ANCHOR_SETS = {"all": ANCHOR_NAMES, "values": VALUES, "groups": tuple(HIGHER_ORDER)}
SCORE_DECIMALS = 6
JSD_DECIMALS = 9
TIE_DECIMALS = 12  # divergences equal to 12 decimals are ties (broken by file order)
TIES = ("file", "release")  # how respondents at equal divergence are ordered (see the module docstring)


# ---------------------------------------------------------------------------------------------
# Anchors and names


def anchor_vector(name: str) -> np.ndarray:
    """The extreme profile for a value or group: members at 6, all other values at 1."""
    group = set(members(name))
    return np.array([SCALE_MAX if v in group else SCALE_MIN for v in VALUES], dtype=float)


def parse_anchors(spec: str | Sequence[str] | None = "all") -> tuple[str, ...]:
    """`all`, `values`, `groups`, a comma-separated string or a list -> canonical names (canonical order)."""
    if spec is None:
        spec = "all"
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in ANCHOR_SETS:
            return ANCHOR_SETS[key]
        parts = [p for p in (x.strip() for x in spec.split(",")) if p]
    elif isinstance(spec, Iterable):
        parts = [str(p) for p in spec]
    else:
        raise UserError(
            f"anchors must be all, values, groups or a list of names, got {spec!r}", "fix the anchors setting"
        )
    if not parts:
        raise UserError("no anchors given", "use all, values, groups or names such as hedonism,power")
    chosen = set()
    for part in parts:
        if part.strip().lower() in ANCHOR_SETS:
            chosen.update(ANCHOR_SETS[part.strip().lower()])
        else:
            chosen.add(resolve(part))
    return tuple(a for a in ANCHOR_NAMES if a in chosen)


def parse_ranks(spec: str | int | Sequence[int] | None, nearest: int) -> tuple[int, ...]:
    """`all` (0..nearest) or a list of ranks in 0..nearest -> sorted unique ranks."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return tuple(range(nearest + 1))
    items = [spec] if isinstance(spec, int) else (spec.split(",") if isinstance(spec, str) else spec)
    ranks = set()
    for item in items:
        try:
            rank = int(str(item).strip())
        except ValueError:
            raise UserError(
                f"rank {item!r} is not a whole number", "ranks are `all` or a list of numbers 0..nearest"
            ) from None
        if isinstance(item, bool) or rank < 0 or rank > nearest:
            raise UserError(
                f"rank {item!r} is outside 0..{nearest} (nearest = {nearest})",
                "rank 0 is the anchor itself, 1..nearest its closest respondents",
            )
        ranks.add(rank)
    if not ranks:
        raise UserError("no ranks given", "use `all` or a list such as [0, 1, 2]")
    return tuple(sorted(ranks))


def profile_name(anchor: str, rank: int) -> str:
    """`hedonism` for rank 0, `hedonism-r01` for rank 1 (DVC matrix key and file name safe)."""
    anchor = resolve(anchor)
    return anchor if rank == 0 else f"{anchor}-r{rank:02d}"


def profile_names(
    anchors: str | Sequence[str] = "all", ranks: str | Sequence[int] = "all", nearest: int = 10
) -> list[str]:
    """The study's profile names, computable without any data (e.g. for a DVC matrix)."""
    chosen_ranks = parse_ranks(ranks, check_nearest(nearest))
    return [profile_name(a, r) for a in parse_anchors(anchors) for r in chosen_ranks]


def check_nearest(nearest: Any, available: int | None = None) -> int:
    if isinstance(nearest, bool) or not isinstance(nearest, (int, np.integer)) or nearest < 0:
        raise UserError(f"nearest must be a whole number >= 0, got {nearest!r}", "set nearest (K) to e.g. 10")
    if available is not None and nearest > available:
        raise UserError(
            f"nearest = {nearest} is larger than the {available} complete respondents in the survey",
            f"use nearest <= {available} or a larger survey",
        )
    return int(nearest)


# ---------------------------------------------------------------------------------------------
# Jensen-Shannon divergence, vectorised


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    total = x.sum(axis=-1, keepdims=True)
    if np.any(x < 0) or np.any(total <= 0):
        raise ValueError("JSD needs non-negative vectors with a positive sum")
    return x / total


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    if p.min() > 0:  # the usual case (scores are >= 1): no masking needed
        return -(p * np.log2(p)).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def jsd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """JS divergence in bits between sum-normalised vectors (broadcasts over leading axes)."""
    p, q = _normalise(p), _normalise(q)
    m = 0.5 * (p + q)
    return np.maximum(_entropy_bits(m) - 0.5 * (_entropy_bits(p) + _entropy_bits(q)), 0.0)


def jsd_matrix(anchors: np.ndarray, respondents: np.ndarray) -> np.ndarray:
    """(a, n) divergences between each anchor and each respondent."""
    a = _normalise(np.atleast_2d(anchors))
    r = _normalise(np.atleast_2d(respondents))
    h_r = _entropy_bits(r)
    out = np.empty((a.shape[0], r.shape[0]))
    for i, p in enumerate(a):  # one (n, 10) pass per anchor keeps memory at O(n)
        m = 0.5 * (r + p)
        out[i] = _entropy_bits(m) - 0.5 * (_entropy_bits(p) + h_r)
    return np.maximum(out, 0.0)


def check_ties(ties: Any) -> str:
    if ties not in TIES:
        raise UserError(
            f"ties must be one of {', '.join(TIES)}, got {ties!r}",
            "file: file order (default); release: the released selection's order (docs/paper.md)",
        )
    return str(ties)


def _pairwise_sum_rows(x: np.ndarray) -> np.ndarray:
    """Row sums with the float operations of numpy's 1-D `np.sum` (pairwise, 8 accumulators).

    `x.sum(axis=1)` on a 2-D array adds in another order, so its last bit can differ from the
    release's per-row scalar calls; this reproduces them exactly for rows shorter than 128.
    """
    n = x.shape[-1]
    if n < 8:
        out = np.zeros(x.shape[:-1])
        for j in range(n):
            out = out + x[..., j]
        return out
    r = [x[..., j].copy() for j in range(8)]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] = r[j] + x[..., i + j]
        i += 8
    out = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for j in range(i, n):
        out = out + x[..., j]
    return out


def release_divergence(anchor: np.ndarray, respondents: np.ndarray) -> np.ndarray:
    """JS divergence (nats) per respondent, bit for bit as `0.5 * entropy(p, m) + 0.5 * entropy(q, m)`
    with scipy.stats.entropy (p the anchor, q the respondent, both sum-normalised, m their mean)."""
    from scipy.special import rel_entr

    r = np.asarray(respondents, dtype=float)
    a = np.asarray(anchor, dtype=float)
    p = np.broadcast_to(a / np.sum(a), r.shape).copy()
    q = r / _pairwise_sum_rows(r)[:, None]
    m = (p + q) / 2

    def entropy(pk: np.ndarray, qk: np.ndarray) -> np.ndarray:
        pk = pk / _pairwise_sum_rows(pk)[:, None]
        qk = qk / _pairwise_sum_rows(qk)[:, None]
        return _pairwise_sum_rows(rel_entr(pk, qk))

    return 0.5 * entropy(p, m) + 0.5 * entropy(q, m)


def nearest(anchors: np.ndarray, respondents: np.ndarray, k: int, ties: str = "file") -> tuple[np.ndarray, np.ndarray]:
    """Indices (a, k) and divergences (a, k) of the k nearest respondents, ties by input order
    (`ties="file"`) or in the released selection's order (`ties="release"`)."""
    ties = check_ties(ties)
    d = jsd_matrix(anchors, respondents)
    n = d.shape[1]
    k = check_nearest(k, n)
    if ties == "release":
        idx = np.empty((d.shape[0], k), dtype=np.int64)
        for i, anchor in enumerate(np.atleast_2d(anchors)):
            # the whole table, numpy's default (unstable) quicksort, as pandas' sort_values does
            idx[i] = np.argsort(release_divergence(anchor, respondents), kind="quicksort")[:k]
        return idx, np.take_along_axis(d, idx, axis=1)
    # Rank on divergences rounded to TIE_DECIMALS: vectors that are permutations of each other
    # off the anchor's values have the same divergence mathematically but can differ by an ulp
    # in floating point; rounding makes them ties, which file order then breaks.
    key = np.round(d, TIE_DECIMALS)
    idx = np.empty((d.shape[0], k), dtype=np.int64)
    for i, row in enumerate(key):
        if k == 0:
            continue
        kth = np.partition(row, k - 1)[k - 1]
        candidates = np.flatnonzero(row <= kth)  # ascending index: every tie at the boundary
        order = np.lexsort((candidates, row[candidates]))
        idx[i] = candidates[order[:k]]
    return idx, np.take_along_axis(d, idx, axis=1)


# ---------------------------------------------------------------------------------------------
# Selection and manifest


def _scores_dict(vector: np.ndarray) -> dict[str, float]:
    return {v: round(float(x), SCORE_DECIMALS) for v, x in zip(VALUES, vector)}


def select_profiles(
    scores: Scores,
    nearest_k: int = 10,
    anchors: str | Sequence[str] = "all",
    ranks: str | Sequence[int] = "all",
    ties: str = "file",
) -> dict[str, Any]:
    """The contract-1 manifest for the chosen anchors and ranks."""
    check_ties(ties)
    k = check_nearest(nearest_k, scores.n_complete)
    chosen = parse_anchors(anchors)
    chosen_ranks = parse_ranks(ranks, k)
    vectors = np.stack([anchor_vector(a) for a in chosen])
    idx, dist = nearest(vectors, scores.matrix, k, ties)
    profiles = []
    for i, anchor in enumerate(chosen):
        for rank in chosen_ranks:
            if rank == 0:
                profiles.append(
                    {
                        "name": profile_name(anchor, 0),
                        "anchor": anchor,
                        "rank": 0,
                        "scores": _scores_dict(vectors[i]),
                        "jsd": None,
                        "respondent": None,
                    }
                )
                continue
            j = int(idx[i, rank - 1])
            profiles.append(
                {
                    "name": profile_name(anchor, rank),
                    "anchor": anchor,
                    "rank": rank,
                    "scores": _scores_dict(scores.matrix[j]),
                    "jsd": round(float(dist[i, rank - 1]), JSD_DECIMALS),
                    "respondent": scores.keys[j],
                }
            )
    return {"values": list(VALUES), "profiles": profiles}


def select_from_file(
    survey: str | Path,
    fmt: str = "items",
    orientation: str = DEFAULT_ORIENTATION,
    nearest_k: int = 10,
    centre: bool = False,
    anchors: str | Sequence[str] = "all",
    ranks: str | Sequence[int] = "all",
    ties: str = "file",
) -> tuple[dict[str, Any], Survey, Scores]:
    """Validate every choice, load and score the survey, select; nothing is written."""
    check_ties(ties)
    check_nearest(nearest_k)
    parse_anchors(anchors)
    parse_ranks(ranks, int(nearest_k))
    loaded, scored = respondent_scores(survey, fmt, orientation, centre)
    return select_profiles(scored, nearest_k, anchors, ranks, ties), loaded, scored


def settings_from_params(p: dict[str, Any]) -> dict[str, Any]:
    """The `profiles:` params section -> keyword arguments of `select_from_file` (validated)."""
    known = {"survey", "format", "orientation", "centre", "nearest", "anchors", "ranks", "ties"}
    unknown = sorted(set(p) - known)
    if unknown:
        raise UserError(
            f"params `profiles` has unknown keys: {', '.join(unknown)}", "valid keys: " + ", ".join(sorted(known))
        )
    if "survey" not in p or not isinstance(p["survey"], str):
        raise UserError(
            "params `profiles.survey` must be a path to the survey CSV", "e.g. data/survey/synthetic_ess_items.csv"
        )
    return {
        "survey": p["survey"],
        "fmt": p.get("format", "items"),
        "orientation": p.get("orientation", DEFAULT_ORIENTATION),
        "centre": p.get("centre", False),
        "nearest_k": p.get("nearest", 10),
        "anchors": p.get("anchors", "all"),
        "ranks": p.get("ranks", "all"),
        "ties": p.get("ties", "file"),
    }


# ---------------------------------------------------------------------------------------------
# The study's models from the selection (`valueharm preset paper --survey FILE`)

ICL_SCOPES = ("all", "anchors", "none")  # which profiles get a prompt-only (icl-) baseline
STUDY_CONTROLS = ("control-shuffled", "control-benign")


def study_from_selection(
    params: dict[str, Any], survey: str | None = None, ties: str | None = None, icl: str = "anchors"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Params whose `study.models` are every profile the survey selects, plus the baselines and controls.

    The selection runs on the survey (validated: a file without the PVQ-21 columns fails in one
    line), so the study trains exactly the profiles the `profiles` stage will write. Order:
    vanilla, the profiles (anchor order, then rank), their `icl-` baselines (`icl`: all profiles,
    the rank-0 anchors only, or none), then both controls (shuffled labels, benign data).
    Returns (params, manifest); the input params are not changed.
    """
    if icl not in ICL_SCOPES:
        raise UserError(f"icl must be one of {', '.join(ICL_SCOPES)}, got {icl!r}", "e.g. --icl all")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in params.items()}
    profiles = dict(out.get("profiles") or {})
    if survey is not None:
        profiles["survey"] = str(survey)
    if ties is not None:
        profiles["ties"] = check_ties(ties)
    out["profiles"] = profiles
    manifest, _, _ = select_from_file(**settings_from_params(profiles))
    names = [p["name"] for p in manifest["profiles"]]
    icl_names = {"all": names, "anchors": [p["name"] for p in manifest["profiles"] if p["rank"] == 0], "none": []}
    study = dict(out.get("study") or {})
    if study.get("control_profile") not in names:  # the shuffled control needs a selected profile
        study["control_profile"] = names[0]
    study["models"] = ["vanilla", *names, *(f"icl-{n}" for n in icl_names[icl]), *STUDY_CONTROLS]
    out["study"] = study
    return out, manifest


# ---------------------------------------------------------------------------------------------
# Value structure (2-D classical MDS of value correlations)


def value_structure(scores: Scores) -> dict[str, Any]:
    """Correlations among the 10 values and a deterministic 2-D classical MDS of them.

    Dissimilarity d = sqrt(2 (1 - r)); Torgerson scaling; each axis's sign fixed so that
    self_direction has non-negative coordinates, which makes the picture stable across runs.
    """
    m = scores.matrix
    if m.shape[0] < 3:
        raise UserError(f"only {m.shape[0]} complete respondents", "the value structure needs at least 3")
    sd = m.std(axis=0)
    safe = np.where(sd > 0, sd, 1.0)
    z = (m - m.mean(axis=0)) / safe
    r = (z.T @ z) / m.shape[0]
    r[sd == 0, :] = 0.0
    r[:, sd == 0] = 0.0
    np.fill_diagonal(r, 1.0)
    d2 = np.clip(2.0 * (1.0 - r), 0.0, None)
    n = d2.shape[0]
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ d2 @ j
    eigval, eigvec = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(eigval)[::-1][:2]
    coords = eigvec[:, order] * np.sqrt(np.clip(eigval[order], 0.0, None))
    ref = VALUES.index("self_direction")
    for axis in range(2):
        if coords[ref, axis] < 0 or (coords[ref, axis] == 0 and coords[:, axis].sum() < 0):
            coords[:, axis] *= -1
    group_of = {v: g for g, ms in HIGHER_ORDER.items() for v in ms}
    points = [
        {
            "value": v,
            "x": round(float(coords[i, 0]), 6),
            "y": round(float(coords[i, 1]), 6),
            "group": group_of.get(v, ""),
        }
        for i, v in enumerate(VALUES)
    ]
    return {
        "correlations": {v: {w: round(float(r[i, k]), 6) for k, w in enumerate(VALUES)} for i, v in enumerate(VALUES)},
        "points": points,
        "explained": [round(float(x), 6) for x in (eigval[order] / max(float(np.clip(eigval, 0, None).sum()), 1e-12))],
    }


def structure_csv(structure: dict[str, Any]) -> str:
    lines = ["value,x,y,group"]
    lines += [f"{p['value']},{p['x']:.6f},{p['y']:.6f},{p['group']}" for p in structure["points"]]
    return "\n".join(lines) + "\n"


def plot_structure_png(structure: dict[str, Any], title: str = "") -> bytes:
    """The MDS picture as PNG bytes (Agg backend, no timestamp metadata: byte-stable)."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    colours = {
        "openness_to_change": "tab:orange",
        "self_enhancement": "tab:red",
        "conservation": "tab:blue",
        "self_transcendence": "tab:green",
        "": "tab:gray",
    }
    pts = {p["value"]: p for p in structure["points"]}
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ring = [pts[v] for v in CIRCUMPLEX_ORDER] + [pts[CIRCUMPLEX_ORDER[0]]]
    ax.plot([p["x"] for p in ring], [p["y"] for p in ring], color="lightgray", lw=1, zorder=1)
    for p in structure["points"]:
        ax.scatter([p["x"]], [p["y"]], color=colours.get(p["group"], "tab:gray"), s=40, zorder=2)
        ax.annotate(DISPLAY[p["value"]], (p["x"], p["y"]), textcoords="offset points", xytext=(5, 5), fontsize=9)
    ax.axhline(0, color="0.85", lw=0.5)
    ax.axvline(0, color="0.85", lw=0.5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title or "Value structure (MDS of value correlations)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def write_outputs(
    out_dir: str | Path,
    manifest: dict[str, Any],
    survey: Survey,
    scores: Scores,
    settings: dict[str, Any] | None = None,
) -> Path:
    """Write manifest.json, survey_summary.json, value_structure.{csv,png} into out_dir atomically."""
    from valueharm.core.atomic import atomic_dir, write_bytes, write_json, write_text

    structure = value_structure(scores)
    summary = summarise(survey, scores)
    summary["structure"] = {"correlations": structure["correlations"], "mds_explained": structure["explained"]}
    summary["selection"] = {
        "n_profiles": len(manifest["profiles"]),
        "anchors": sorted({p["anchor"] for p in manifest["profiles"]}, key=ANCHOR_NAMES.index),
        "ranks": sorted({p["rank"] for p in manifest["profiles"]}),
        "jsd_unit": "bits (Jensen-Shannon divergence, not distance)",
    }
    if settings:
        names = {"fmt": "format", "nearest_k": "nearest"}
        # `ties` is recorded only when it is not the default (file order), so that summaries written
        # before the option existed stay byte-identical.
        summary["params"] = {names.get(k, k): v for k, v in settings.items() if not (k == "ties" and v == "file")}
    centred = ", centred" if scores.centred else ""
    title = f"Value structure: {Path(survey.path).name} ({scores.orientation}{centred}, n={scores.n_complete})"
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / "manifest.json", manifest)
        write_json(tmp / "survey_summary.json", summary)
        write_text(tmp / "value_structure.csv", structure_csv(structure))
        write_bytes(tmp / "value_structure.png", plot_structure_png(structure, title))
    return Path(out_dir)
