"""Survey data -> one 10-value vector per respondent; and the synthetic default survey.

Loading
-------
Two input formats (docs/design.md, contract 1):

* ``items``: ESS-format PVQ-21 answers. The 21 item columns (``ipcrtiv`` ... ``impfun``, with or
  without the ESS round suffix ``a``; header case and surrounding spaces ignored) hold ESS codes:
  1..6 are answers (1 = "very much like me", 6 = "not like me at all"); any whole code >= 7
  (ESS uses 7/8/9 and 66/77/88/99) and blank cells are missing answers. ``cntry``, ``idno`` and
  the weights ``dweight``, ``pspwght``, ``anweight`` are kept when present. A respondent's key is
  ``<cntry>:<idno>`` when ``cntry`` exists (ESS ids repeat across countries), else ``idno``, else
  ``row<n>`` (1-based data row); a key that still repeats gets ``@row<n>`` appended.
* ``scores``: the 10 value columns (header match ignores case and treats ``-``, ``_`` and
  spaces alike, so ``Self-direction`` = ``self_direction``), each in 1..6; blank = missing.

Scoring
-------
A respondent's value score is the plain mean of that value's items (``ITEM_KEY``, the key in
docs/paper.md). Only complete respondents (all 21 items answered, or all 10 scores present) are scored;
missing answers are counted per column. Two explicit choices, both params:

* orientation ``raw`` keeps ESS coding (1 = very much like me); ``reversed`` maps x -> 7 - x so
  that 6 = most important, which is what VIM training assumes. **Default: reversed.** The
  study's released selection used raw codes while training read 6 as "most important", so its
  "close" respondents hold roughly the opposite of the profiles they stand for (docs/paper.md,
  "Value profiles"). ``raw`` stays available to reproduce the released selection.
* ``centre`` (default off, as in the study): Schwartz's correction for scale use. Each value
  score minus the respondent's mean over all 21 items (MRAT), re-anchored at the scale midpoint
  3.5 and clipped to 1..6 so that the vector stays a 1..6 profile usable for training and for
  Jensen-Shannon divergence (clipped cells are counted). Needs item data.

Synthetic survey
----------------
``generate_synthetic_survey`` / ``write_synthetic_survey`` make the default ``data/survey/``:
ESS-format PVQ-21 answers in raw coding, clearly named synthetic. It is built only from
published aggregate facts, never from ESS microdata:

* the circumplex (Schwartz 1992; for the ESS PVQ-21, Davidov, Schmidt & Schwartz 2008, Public
  Opinion Quarterly 72:420-445): the ten values sit around a circle in ``CIRCUMPLEX_ORDER``,
  neighbours compatible, opposites in conflict;
* the pan-cultural importance hierarchy (Schwartz & Bardi 2001, J. Cross-Cultural Psychology
  32:268-290): benevolence, universalism and self-direction most important, power and
  stimulation least. The means below follow that order; their magnitudes are illustrative;
* ESS facts that countries differ in mean value priorities and that item nonresponse is rare
  and concentrated in a few respondents.

Generative model, for respondent i in synthetic country c (importance scale, 6 = most important):

    z_i   = o_c + s * e_i,  e_i ~ N(0, I_2)                    latent position in the value plane
    g_i   = a_c + N(0, sd_scale^2)                              scale use (general acquiescence)
    v_iv  = mu_v + <z_i, (cos t_v, sin t_v)> + g_i + N(0, sd_value^2)
    y_ij  = clip(round(v_i,value(j) + N(0, sd_item^2)), 1, 6)   item j's answer
    raw   = 7 - y_ij                                            ESS coding, 1 = very much like me

with t_v = 2*pi*k/10 for the value's position k in ``CIRCUMPLEX_ORDER``, country offsets o_c in
the plane and scale offsets a_c fixed below, and ~2% of answers replaced by missing codes
7 (refusal), 8 (don't know), 9 (no answer): a fraction of respondents are partial responders
who skip items at random. Countries use ISO 3166 user-assigned codes XA..XF, ids repeat across
countries (as in the ESS) and ``anweight`` is a synthetic analysis weight. The random stream is
NumPy's legacy ``RandomState`` (stable across NumPy versions) with a fixed seed, and every
number is written with fixed formatting, so the files are byte-identical across runs.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from valueharm.core.atomic import write_json, write_text
from valueharm.core.errors import UserError
from valueharm.core.values import CIRCUMPLEX_ORDER, VALUES, normalise_key

# ---------------------------------------------------------------------------------------------
# The PVQ-21 items (ESS names without round suffix), in ESS questionnaire order.
ITEM_ORDER: tuple[str, ...] = (
    "ipcrtiv", "imprich", "ipeqopt", "ipshabt", "impsafe", "impdiff", "ipfrule", "ipudrst",
    "ipmodst", "ipgdtim", "impfree", "iphlppl", "ipsuces", "ipstrgv", "ipadvnt", "ipbhprp",
    "iprspot", "iplylfr", "impenv", "imptrad", "impfun",
)

# Item key (docs/paper.md, "Value profiles").
ITEM_KEY: dict[str, tuple[str, ...]] = {
    "achievement": ("ipshabt", "ipsuces"),
    "benevolence": ("iphlppl", "iplylfr"),
    "conformity": ("ipfrule", "ipbhprp"),
    "hedonism": ("ipgdtim", "impfun"),
    "power": ("imprich", "iprspot"),
    "security": ("impsafe", "ipstrgv"),
    "self_direction": ("ipcrtiv", "impfree"),
    "stimulation": ("impdiff", "ipadvnt"),
    "tradition": ("ipmodst", "imptrad"),
    "universalism": ("ipeqopt", "ipudrst", "impenv"),
}

FORMATS = ("items", "scores")
ORIENTATIONS = ("raw", "reversed")
DEFAULT_ORIENTATION = "reversed"
WEIGHT_COLUMNS = ("dweight", "pspwght", "anweight")
SCALE_MIN, SCALE_MAX, SCALE_MID = 1.0, 6.0, 3.5
FIRST_MISSING_CODE = 7  # ESS: 7/8/9 and 66/77/88/99 are refusals, don't knows, no answers, n/a
_BLANKS = {"", "na", "nan", "."}


# ---------------------------------------------------------------------------------------------
# Data classes


@dataclass
class Survey:
    """A loaded survey file, before scoring."""

    path: str
    format: str
    table: pd.DataFrame  # items: ITEM_ORDER columns, raw codes, NaN = missing; scores: VALUES columns
    keys: list[str]
    country: list[str] | None = None
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: dict[str, int] = field(default_factory=dict)  # column -> missing cells

    @property
    def n_rows(self) -> int:
        return len(self.table)


@dataclass
class Scores:
    """10-value vectors (``VALUES`` order) of the complete respondents of a survey."""

    matrix: np.ndarray  # (n_complete, 10) float64
    keys: list[str]
    rows: np.ndarray  # 0-based data rows in the survey file
    orientation: str
    centred: bool
    n_rows: int
    clipped: int = 0

    @property
    def n_complete(self) -> int:
        return int(self.matrix.shape[0])


# ---------------------------------------------------------------------------------------------
# Loading


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, got {value!r}", f"set {name} to one of them")
    return value


def _read_table(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"survey file {path} not found", "check the path (ESS data must be downloaded by you from europeansocialsurvey.org)")
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise UserError(f"survey file {path} is empty", "give a CSV with a header row and one row per respondent")
    header = text.splitlines()[0]
    sep = "\t" if ("\t" in header and "," not in header) else (";" if (";" in header and "," not in header) else ",")
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"survey file {path} is not a readable CSV ({first})", "check the delimiter and quoting") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise UserError(f"survey file {path} has a header but no respondents", "give at least one data row")
    return table


def _numeric(table: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    """Column as float64 with NaN for blank cells; UserError naming line and column otherwise."""
    raw = table[column].astype(object).to_numpy()
    cleaned = np.array([str(v).strip() for v in raw], dtype=object)
    blank = np.array([v.lower() in _BLANKS for v in cleaned], dtype=bool)
    values = pd.to_numeric(pd.Series(np.where(blank, None, cleaned), dtype=object), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & ~blank | np.isinf(values))
    if bad.size:
        row = int(bad[0])
        raise UserError(
            f"{path}: non-numeric value {cleaned[row]!r} in column {column}, data row {row + 1} (line {row + 2})",
            "cells must be numbers (blank = missing)",
        )
    return values


def _find_columns(table: pd.DataFrame) -> dict[str, str]:
    """Lower-cased logical name -> actual header."""
    found: dict[str, str] = {}
    for col in table.columns:
        found.setdefault(col.lower(), col)
    return found


def _respondent_keys(table: pd.DataFrame, columns: dict[str, str]) -> tuple[list[str], list[str] | None]:
    n = len(table)
    country = None
    if "cntry" in columns:
        country = [str(v).strip() for v in table[columns["cntry"]]]
    if "idno" in columns:
        ids = [str(v).strip() for v in table[columns["idno"]]]
        keys = [f"{c}:{i}" for c, i in zip(country, ids)] if country is not None else ids
        keys = [k if i else f"row{r + 1}" for r, (k, i) in enumerate(zip(keys, ids))]
    else:
        keys = [f"row{r + 1}" for r in range(n)]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    keys = [k if counts[k] == 1 else f"{k}@row{r + 1}" for r, k in enumerate(keys)]
    return keys, country


def _weights(table: pd.DataFrame, columns: dict[str, str], path: str | Path) -> pd.DataFrame:
    present = [w for w in WEIGHT_COLUMNS if w in columns]
    return pd.DataFrame({w: _numeric(table, columns[w], path) for w in present}, index=table.index)


def load_items(path: str | Path) -> Survey:
    """ESS-format PVQ-21 item data (raw codes kept; missing codes become NaN and are counted)."""
    table = _read_table(path)
    columns = _find_columns(table)
    mapping: dict[str, str] = {}
    absent = []
    for item in ITEM_ORDER:
        plain, suffixed = columns.get(item), columns.get(item + "a")
        if plain and suffixed:
            raise UserError(f"{path}: both {plain} and {suffixed} present", "keep one column per PVQ-21 item")
        if plain or suffixed:
            mapping[item] = plain or suffixed  # type: ignore[assignment]
        else:
            absent.append(item)
    if absent:
        raise UserError(
            f"{path}: missing PVQ-21 item columns: {', '.join(absent)}",
            "items format needs all 21 ESS items (optionally with round suffix 'a'); use --format scores for 10 value columns",
        )
    data: dict[str, np.ndarray] = {}
    missing: dict[str, int] = {}
    for item in ITEM_ORDER:
        col = mapping[item]
        values = _numeric(table, col, path)
        answered = ~np.isnan(values)
        invalid = answered & ((values != np.round(values)) | (values < SCALE_MIN))
        if invalid.any():
            row = int(np.flatnonzero(invalid)[0])
            raise UserError(
                f"{path}: {values[row]:g} in column {col}, data row {row + 1} (line {row + 2}) is not an ESS code",
                "answers are whole numbers 1..6, codes 7 and above mean missing",
            )
        is_missing = np.isnan(values) | (values >= FIRST_MISSING_CODE)
        missing[item] = int(is_missing.sum())
        data[item] = np.where(is_missing, np.nan, values)
    keys, country = _respondent_keys(table, columns)
    return Survey(str(path), "items", pd.DataFrame(data, index=table.index), keys, country,
                  _weights(table, columns, path), missing)


def load_scores(path: str | Path) -> Survey:
    """Score-format data: the 10 value columns, each in 1..6 (blank = missing)."""
    table = _read_table(path)
    mapping: dict[str, str] = {}
    for col in table.columns:
        key = normalise_key(col)
        if key in VALUES:
            if key in mapping:
                raise UserError(f"{path}: columns {mapping[key]!r} and {col!r} both name {key}", "keep one column per value")
            mapping[key] = col
    absent = [v for v in VALUES if v not in mapping]
    if absent:
        raise UserError(
            f"{path}: missing value columns: {', '.join(absent)}",
            "scores format needs the 10 value columns (" + ", ".join(VALUES) + "); use --format items for ESS item data",
        )
    data: dict[str, np.ndarray] = {}
    missing: dict[str, int] = {}
    for value in VALUES:
        col = mapping[value]
        values = _numeric(table, col, path)
        out = ~np.isnan(values) & ((values < SCALE_MIN) | (values > SCALE_MAX))
        if out.any():
            row = int(np.flatnonzero(out)[0])
            raise UserError(
                f"{path}: {values[row]:g} in column {col}, data row {row + 1} (line {row + 2}) is outside 1..6",
                "value scores must lie in 1..6 (blank = missing)",
            )
        missing[value] = int(np.isnan(values).sum())
        data[value] = values
    columns = _find_columns(table)
    keys, country = _respondent_keys(table, columns)
    return Survey(str(path), "scores", pd.DataFrame(data, index=table.index), keys, country,
                  _weights(table, columns, path), missing)


def load_survey(path: str | Path, fmt: str = "items") -> Survey:
    check_choice("format", fmt, FORMATS)
    return load_items(path) if fmt == "items" else load_scores(path)


# ---------------------------------------------------------------------------------------------
# Scoring


def orient(x: np.ndarray, orientation: str) -> np.ndarray:
    """raw: unchanged (ESS, 1 = very much like me); reversed: 7 - x (6 = most important)."""
    check_choice("orientation", orientation, ORIENTATIONS)
    x = np.asarray(x, dtype=float)
    return x if orientation == "raw" else (SCALE_MIN + SCALE_MAX) - x


def score_items(codes: np.ndarray, orientation: str = DEFAULT_ORIENTATION, centre: bool = False) -> tuple[np.ndarray, int]:
    """Item answers (n x 21, ``ITEM_ORDER``, NaN = missing) -> (n x 10 value scores, clipped cells).

    Plain item means per value; a value with a missing item is NaN (and so, when centring, is
    every value of that respondent, since MRAT needs all 21 items).
    """
    codes = orient(np.asarray(codes, dtype=float), orientation)
    if codes.ndim != 2 or codes.shape[1] != len(ITEM_ORDER):
        raise ValueError(f"expected an (n, {len(ITEM_ORDER)}) array, got {codes.shape}")
    index = {item: j for j, item in enumerate(ITEM_ORDER)}
    scores = np.column_stack([codes[:, [index[i] for i in ITEM_KEY[v]]].mean(axis=1) for v in VALUES])
    clipped = 0
    if centre:
        mrat = codes.mean(axis=1, keepdims=True)
        scores = scores - mrat + SCALE_MID
        finite = np.isfinite(scores)
        clipped = int(((scores < SCALE_MIN) | (scores > SCALE_MAX))[finite].sum())
        scores = np.clip(scores, SCALE_MIN, SCALE_MAX)
    return scores, clipped


def score(survey: Survey, orientation: str = DEFAULT_ORIENTATION, centre: bool = False) -> Scores:
    """Value vectors of the complete respondents; UserError when there are none."""
    check_choice("orientation", orientation, ORIENTATIONS)
    if not isinstance(centre, bool):
        raise UserError(f"centre must be true or false, got {centre!r}", "fix params.yaml")
    arr = survey.table.to_numpy(dtype=float)
    complete = ~np.isnan(arr).any(axis=1)
    clipped = 0
    if survey.format == "items":
        matrix, clipped = score_items(arr[complete], orientation, centre)
    else:
        if centre:
            raise UserError("centring needs item data (each respondent's mean over all 21 PVQ-21 items)",
                            "use --format items, or turn centring off (--no-centre / centre: false)")
        matrix = orient(arr[complete], orientation)
    rows = np.flatnonzero(complete)
    if rows.size == 0:
        what = "all 21 items answered" if survey.format == "items" else "all 10 value scores"
        raise UserError(f"{survey.path}: no complete respondent (none has {what})", "check the file's missing codes")
    return Scores(np.ascontiguousarray(matrix, dtype=float), [survey.keys[r] for r in rows], rows,
                  orientation, centre, survey.n_rows, clipped)


def respondent_scores(path: str | Path, fmt: str = "items", orientation: str = DEFAULT_ORIENTATION,
                      centre: bool = False) -> tuple[Survey, Scores]:
    """Load and score in one call (validates the choices before reading the file)."""
    check_choice("format", fmt, FORMATS)
    check_choice("orientation", orientation, ORIENTATIONS)
    if centre and fmt == "scores":
        raise UserError("centring needs item data (each respondent's mean over all 21 PVQ-21 items)",
                        "use --format items, or turn centring off (--no-centre / centre: false)")
    survey = load_survey(path, fmt)
    return survey, score(survey, orientation, centre)


def summarise(survey: Survey, scores: Scores) -> dict[str, Any]:
    """Per-value means/SDs of the scored respondents, sample sizes and missing counts."""
    m = scores.matrix
    per_value: dict[str, dict[str, float]] = {}
    weight = None
    if "anweight" in survey.weights:
        w = survey.weights["anweight"].to_numpy(dtype=float)[scores.rows]
        if np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0:
            weight = w
    for j, value in enumerate(VALUES):
        col = m[:, j]
        entry = {
            "mean": round(float(col.mean()), 6),
            "sd": round(float(col.std(ddof=1)), 6) if col.size > 1 else None,
            "min": round(float(col.min()), 6),
            "max": round(float(col.max()), 6),
        }
        if weight is not None:
            entry["weighted_mean"] = round(float(np.average(col, weights=weight)), 6)
        per_value[value] = entry
    missing_by_value: dict[str, int] = {}
    if survey.format == "items":
        for value, items in ITEM_KEY.items():
            missing_by_value[value] = int(survey.table[list(items)].isna().any(axis=1).sum())
    else:
        missing_by_value = dict(survey.missing)
    return {
        "source": survey.path,
        "format": survey.format,
        "orientation": scores.orientation,
        "centred": scores.centred,
        "n_rows": survey.n_rows,
        "n_complete": scores.n_complete,
        "n_incomplete": survey.n_rows - scores.n_complete,
        "missing_cells": dict(survey.missing),
        "missing_cells_total": int(sum(survey.missing.values())),
        "respondents_missing_by_value": missing_by_value,
        "clipped_cells": scores.clipped,
        "countries": sorted(set(survey.country)) if survey.country is not None else None,
        "weights": list(survey.weights.columns),
        "weighted_by": "anweight" if weight is not None else None,
        "values": per_value,
    }


# ---------------------------------------------------------------------------------------------
# Synthetic survey

SYNTHETIC_SEED = 20250606
SYNTHETIC_ITEMS_FILE = "synthetic_ess_items.csv"
SYNTHETIC_META_FILE = "synthetic_ess_meta.json"

# Importance means on the 1..6 "6 = most important" scale: ordered after the pan-cultural
# hierarchy (Schwartz & Bardi 2001); magnitudes illustrative.
SYNTHETIC_MEANS: dict[str, float] = {
    "benevolence": 4.9, "universalism": 4.7, "self_direction": 4.6, "security": 4.5,
    "conformity": 4.1, "tradition": 3.9, "hedonism": 3.9, "achievement": 3.7,
    "stimulation": 3.4, "power": 3.1,
}
# Synthetic countries (ISO 3166 user-assigned codes): size, latent offset (x, y), scale offset.
SYNTHETIC_COUNTRIES: dict[str, tuple[int, tuple[float, float], float]] = {
    "XA": (600, (0.45, 0.10), 0.10),
    "XB": (550, (-0.40, 0.15), -0.05),
    "XC": (500, (0.05, 0.45), 0.00),
    "XD": (500, (0.00, -0.45), 0.15),
    "XE": (450, (0.30, -0.30), -0.15),
    "XF": (400, (-0.30, -0.25), 0.05),
}
SYNTHETIC_PARAMS: dict[str, float] = {
    "latent_sd": 0.75,            # s: spread of respondents in the value plane
    "scale_use_sd": 0.30,         # sd_scale: individual acquiescence
    "value_sd": 0.30,             # sd_value: respondent-specific value deviations
    "item_sd": 0.55,              # sd_item: answer noise per item
    "partial_responder_rate": 0.08,   # respondents who skip items
    "skip_rate": 0.25,            # P(item missing) for a partial responder -> ~2% of cells
}
SYNTHETIC_MISSING_CODES: dict[int, float] = {7: 0.25, 8: 0.60, 9: 0.15}  # refusal, don't know, no answer


def _angles() -> dict[str, float]:
    return {v: 2.0 * math.pi * k / len(CIRCUMPLEX_ORDER) for k, v in enumerate(CIRCUMPLEX_ORDER)}


def generate_synthetic_survey(seed: int = SYNTHETIC_SEED, scale: float = 1.0) -> pd.DataFrame:
    """The synthetic ESS-format table (raw coding, ints; missing as 7/8/9) described above.

    ``scale`` multiplies every country's size (1.0 gives n = 3,000).
    """
    rng = np.random.RandomState(seed)
    p = SYNTHETIC_PARAMS
    angle = _angles()
    value_of_item = {item: v for v, items in ITEM_KEY.items() for item in items}
    frames = []
    for code, (size, (ox, oy), scale_offset) in SYNTHETIC_COUNTRIES.items():
        n = max(1, int(round(size * scale)))
        z = np.array([ox, oy]) + p["latent_sd"] * rng.standard_normal((n, 2))
        g = scale_offset + p["scale_use_sd"] * rng.standard_normal(n)
        value_level = {}
        for v in VALUES:
            direction = np.array([math.cos(angle[v]), math.sin(angle[v])])
            value_level[v] = SYNTHETIC_MEANS[v] + z @ direction + g + p["value_sd"] * rng.standard_normal(n)
        answers = np.empty((n, len(ITEM_ORDER)), dtype=np.int64)
        for j, item in enumerate(ITEM_ORDER):
            y = value_level[value_of_item[item]] + p["item_sd"] * rng.standard_normal(n)
            answers[:, j] = (SCALE_MIN + SCALE_MAX) - np.clip(np.rint(y), SCALE_MIN, SCALE_MAX)
        partial = rng.uniform(size=n) < p["partial_responder_rate"]
        skip = (rng.uniform(size=(n, len(ITEM_ORDER))) < p["skip_rate"]) & partial[:, None]
        codes = np.array(list(SYNTHETIC_MISSING_CODES))
        probs = np.array(list(SYNTHETIC_MISSING_CODES.values()))
        drawn = codes[np.searchsorted(np.cumsum(probs), rng.uniform(size=(n, len(ITEM_ORDER))), side="right").clip(0, len(codes) - 1)]
        answers = np.where(skip, drawn, answers)
        weight = np.exp(0.25 * rng.standard_normal(n))
        weight = weight / weight.mean()
        frame = pd.DataFrame(answers, columns=list(ITEM_ORDER))
        frame.insert(0, "anweight", weight)
        frame.insert(0, "idno", np.arange(100001, 100001 + n))
        frame.insert(0, "cntry", code)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def synthetic_csv_text(table: pd.DataFrame) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(table.columns))
    for row in table.itertuples(index=False):
        writer.writerow([row[0], int(row[1]), f"{float(row[2]):.6f}", *(int(x) for x in row[3:])])
    return buffer.getvalue()


def synthetic_meta(table: pd.DataFrame, seed: int = SYNTHETIC_SEED) -> dict[str, Any]:
    items = table[list(ITEM_ORDER)].to_numpy()
    missing = items >= FIRST_MISSING_CODE
    return {
        "synthetic": True,
        "notice": "SYNTHETIC data, not European Social Survey microdata: generated by valueharm from "
                  "published aggregate facts only; no ESS respondent is in it.",
        "generator": "valueharm.data.survey.generate_synthetic_survey",
        "seed": seed,
        "random_stream": "numpy.random.RandomState (legacy, stream-stable)",
        "n": int(len(table)),
        "n_complete": int((~missing.any(axis=1)).sum()),
        "missing_cell_rate": round(float(missing.mean()), 6),
        "countries": {c: int(n) for c, n in table["cntry"].value_counts().sort_index().items()},
        "columns": list(table.columns),
        "coding": "raw ESS PVQ-21 coding: 1 = very much like me ... 6 = not like me at all; "
                  "7 = refusal, 8 = don't know, 9 = no answer",
        "item_key": {v: list(items_) for v, items_ in ITEM_KEY.items()},
        "model": {
            "description": "latent 2-D position per respondent (country offset + N(0, latent_sd^2) per axis); "
                           "value level = mean + projection on the value's circumplex direction + scale use + "
                           "value noise; item answer = round(value level + item noise) clipped to 1..6 on the "
                           "importance scale, written as 7 - answer (raw ESS coding); partial responders skip "
                           "items at random with codes 7/8/9",
            "circumplex_order": list(CIRCUMPLEX_ORDER),
            "angles_degrees": {v: round(math.degrees(a), 6) for v, a in _angles().items()},
            "importance_means": SYNTHETIC_MEANS,
            "countries": {c: {"size": s, "latent_offset": list(o), "scale_offset": a}
                          for c, (s, o, a) in SYNTHETIC_COUNTRIES.items()},
            "parameters": SYNTHETIC_PARAMS,
            "missing_codes": {str(k): v for k, v in SYNTHETIC_MISSING_CODES.items()},
        },
        "sources": [
            "Schwartz, S. H. (1992). Universals in the content and structure of values. Advances in "
            "Experimental Social Psychology 25, 1-65 (circumplex structure).",
            "Davidov, E., Schmidt, P., & Schwartz, S. H. (2008). Bringing values back in: the adequacy "
            "of the European Social Survey to measure values in 20 countries. Public Opinion Quarterly "
            "72, 420-445 (PVQ-21 in the ESS).",
            "Schwartz, S. H., & Bardi, A. (2001). Value hierarchies across cultures: taking a "
            "similarities perspective. Journal of Cross-Cultural Psychology 32, 268-290 (importance order).",
        ],
        "licence": "generated data, no third-party rights; same licence as valueharm",
    }


def write_synthetic_survey(out_dir: str | Path, seed: int = SYNTHETIC_SEED) -> None:
    """Write ``synthetic_ess_items.csv`` and ``synthetic_ess_meta.json`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    table = generate_synthetic_survey(seed)
    write_text(out_dir / SYNTHETIC_ITEMS_FILE, synthetic_csv_text(table))
    write_json(out_dir / SYNTHETIC_META_FILE, synthetic_meta(table, seed))
