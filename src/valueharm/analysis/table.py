"""The results table of contract 2: loading, validation and per-model aggregates.

A results table is long: one row per (model, prompt) with `model, prompt_id, category, score`
(harm 1..5), `flagged` (0/1) and the model's 10 target value scores, one column per canonical
value. Headers may use any case, and '-', '_' and spaces alike ("Self-direction" is
`self_direction`). Extra columns (the response text, the benchmark name) are ignored.

Rules a table must follow (each violation is one `UserError` line naming the column or row):
- every required column is present;
- `score` is a number in [1, 5] and `flagged` is 0 or 1 (true/false also read); an empty cell
  means the judge gave no such label (a BeaverTails row has no 1..5 score), but not both;
- optional columns `harmful` and `compliance` (0/1, empty = the judge gives no such label): the
  judge's separate outcomes (evaluation/judges/__init__.py, OUTCOMES); analyses run on every
  outcome in OUTCOMES that has data, so harm and compliance are reported side by side;
- value cells are numbers and the same on every row of a model. A model with all 10 value
  cells empty has no target profile (vanilla, the controls): it takes part in the group
  comparisons but not in the value correlations or the prompt-level models;
- optional column `adapter_seed` (an integer, empty for a model without trained adapters): which of
  a model's adapters (`study.seeds`) gave the answer. A model trained with several seeds has one row
  per (adapter, prompt); per-prompt comparisons use the mean over the model's adapters, and
  `analysis.adapters` compares models with the adapter as the unit;
- one row per (model, adapter_seed, prompt_id), one category per prompt_id, and every category
  answered by at least two models (a category that only one model answered is almost always a typo);
- "overall" is reserved as the name of the all-categories aggregate.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from valueharm.core.atomic import iter_jsonl
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES, normalise_key

BASE_COLUMNS: tuple[str, ...] = ("model", "prompt_id", "category", "score", "flagged")
REQUIRED_COLUMNS: tuple[str, ...] = BASE_COLUMNS + VALUES
OPTIONAL_OUTCOMES: tuple[str, ...] = ("harmful", "compliance")
OPTIONAL_KEYS: tuple[str, ...] = ("adapter_seed",)
OUTCOMES: tuple[str, ...] = ("score", "flagged", "harmful", "compliance")
BINARY_OUTCOMES: tuple[str, ...] = ("flagged", "harmful", "compliance")
OUTCOME_MEANING = {
    "score": "mean harm score (1..5) of the model's answers (rubric judges)",
    "flagged": "share of the model's answers the judge flagged (per judge: judges.FLAGGED_RULE)",
    "harmful": "share of the model's answers that give meaningful help towards the harm",
    "compliance": "share of the model's answers that attempt what was asked (coherent or not)",
}
OVERALL = "overall"
MODEL_KINDS = ("vanilla", "value_aligned", "prompt_only", "control")

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


def model_kind(name: str) -> str:
    """The model's role in a results table, by the package's naming (profiles.study.model_kind);
    tables from elsewhere may write the prefixes in any case or with `_` (icl_power)."""
    from valueharm.profiles.study import model_kind as study_kind

    key = re.sub(r"^(icl|control)_", r"\1-", str(name).strip().lower())
    kind = study_kind(key)[0]
    return {"vanilla": "vanilla", "icl": "prompt_only", "adapter": "value_aligned"}.get(kind, "control")


# --------------------------------------------------------------------------------------------
# Reading


def read_table(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read a CSV or JSONL file as strings/raw JSON values; returns (frame, "csv"|"jsonl")."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"results file {path} not found", "pass the judged results table with --results")
    if path.is_dir():
        raise UserError(f"results path {path} is a directory", "pass a CSV or JSONL file")
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(4096)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text", "save the results table as UTF-8 CSV or JSONL") from exc
    if not head.strip():
        raise UserError(f"results file {path} is empty", "pass a table with a header and one row per (model, prompt)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json") or (suffix not in (".csv", ".tsv") and head.lstrip().startswith("{")):
        return _read_jsonl(path), "jsonl"
    sep = "\t" if suffix == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(
            f"{path} is not a readable CSV table ({first})", "write one header line and one row per (model, prompt)"
        ) from exc
    return frame, "csv"


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows: list[dict] = []
    lines: list[int] = []
    for number, obj in iter_jsonl(path, "save the results table as UTF-8 JSONL, one JSON object per line"):
        rows.append(obj)
        lines.append(number)
    frame = pd.DataFrame(rows)
    frame.attrs["lines"] = lines
    return frame


# --------------------------------------------------------------------------------------------
# Validation


def _rename_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for column in frame.columns:
        key = normalise_key(str(column))
        if key in REQUIRED_COLUMNS or key in OPTIONAL_OUTCOMES or key in OPTIONAL_KEYS:
            if key in seen:
                raise UserError(f"{source}: columns {seen[key]!r} and {column!r} both mean {key!r}", "keep one of them")
            seen[key] = str(column)
            mapping[column] = key
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise UserError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}",
            "a results table needs model, prompt_id, category, score, flagged and the 10 value columns "
            "(" + ", ".join(VALUES) + ")",
        )
    renamed = frame.rename(columns=mapping)
    return renamed[list(REQUIRED_COLUMNS) + [c for c in OPTIONAL_OUTCOMES + OPTIONAL_KEYS if c in seen]]


def _blank(series: pd.Series) -> np.ndarray:
    """True where a cell is empty (None, NaN or whitespace)."""
    if pd.api.types.is_string_dtype(series.dtype) and not series.dtype == object:
        return (series.isna() | (series.str.strip() == "")).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.isna().to_numpy(dtype=bool)
    values = series.to_numpy(dtype=object)
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip()):
            out[i] = True
    return out


def _where(frame: pd.DataFrame, i: int, source: str) -> str:
    lines = frame.attrs.get("lines")
    place = f"line {lines[i]}" if lines else f"row {i + 1}"
    return f"{source}: {place} (model={frame['model'].iat[i]!r}, prompt_id={frame['prompt_id'].iat[i]!r})"


def _numeric(frame: pd.DataFrame, column: str, source: str, blank: np.ndarray) -> np.ndarray:
    raw = frame[column]
    if pd.api.types.is_string_dtype(raw.dtype) and raw.dtype != object:
        cleaned = raw.str.strip().where(~blank, None)
    else:
        cleaned = raw.map(lambda v: v.strip() if isinstance(v, str) else (float(v) if isinstance(v, bool) else v))
        cleaned = cleaned.where(~blank, None)
    numbers = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero((~np.isfinite(numbers)) & ~blank)
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"{_where(frame, i, source)}: {column} {raw.iat[i]!r} is not a number", f"write {column} as a number"
        )
    return numbers


def _flags(frame: pd.DataFrame, source: str, blank: np.ndarray, column: str = "flagged") -> np.ndarray:
    col = frame[column]
    if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
        keys = col.str.strip().str.lower().to_numpy(dtype=object)
    else:
        keys = col.map(lambda v: str(v).strip().lower()).to_numpy(dtype=object)
    out = np.full(len(keys), np.nan)
    out[np.isin(keys, list(_TRUE))] = 1.0
    out[np.isin(keys, list(_FALSE))] = 0.0
    bad = np.flatnonzero(np.isnan(out) & ~blank)
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"{_where(frame, i, source)}: {column} {frame[column].iat[i]!r} is not 0 or 1",
            f"write {column} as 0 or 1 (empty: no such label)",
        )
    out[blank] = np.nan
    return out


def validate_results(frame: pd.DataFrame, source: str = "results table") -> pd.DataFrame:
    """Check a raw long table and return it typed: strings for ids, floats for the rest.

    Returns a new frame with REQUIRED_COLUMNS, the OPTIONAL_OUTCOMES (NaN where a table lacks
    them) and `adapter_seed` (nullable Int64, empty where a table lacks it).
    """
    if len(frame) == 0:
        raise UserError(f"{source} has no rows", "pass a table with one row per (model, prompt)")
    lines = frame.attrs.get("lines")
    table = _rename_columns(frame, source)
    table.attrs["lines"] = lines
    for column in ("model", "prompt_id", "category"):
        blank = _blank(table[column])
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            place = f"line {lines[i]}" if lines else f"row {i + 1}"
            raise UserError(f"{source}: {place}: empty {column}", f"every row needs a {column}")
        col = table[column]
        if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object:
            table[column] = col.str.strip().astype(object)
        else:
            table[column] = col.map(lambda v: str(v).strip())
    reserved = table["category"].str.lower() == OVERALL
    if reserved.any():
        i = int(np.flatnonzero(reserved.to_numpy())[0])
        raise UserError(f"{_where(table, i, source)}: category name {OVERALL!r} is reserved", "rename that category")

    score_blank = _blank(table["score"])
    flag_blank = _blank(table["flagged"])
    both = np.flatnonzero(score_blank & flag_blank)
    if both.size:
        raise UserError(
            f"{_where(table, int(both[0]), source)}: both score and flagged are empty", "each row needs a judge label"
        )
    score = _numeric(table, "score", source, score_blank)
    out_of_range = np.flatnonzero(np.isfinite(score) & ((score < 1) | (score > 5)))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise UserError(
            f"{_where(table, i, source)}: score {table['score'].iat[i]!r} is outside 1..5", "use the 1..5 harm scale"
        )
    flagged = _flags(table, source, flag_blank)
    optional = {
        c: (_flags(table, source, _blank(table[c]), c) if c in table.columns else np.full(len(table), np.nan))
        for c in OPTIONAL_OUTCOMES
    }

    value_blank = {v: _blank(table[v]) for v in VALUES}
    values = {v: _numeric(table, v, source, value_blank[v]) for v in VALUES}
    adapter_seed = _adapter_seeds(table, source)

    typed = pd.DataFrame(
        {
            "model": table["model"].astype(object),
            "prompt_id": table["prompt_id"].astype(object),
            "category": table["category"].astype(object),
            "score": score,
            "flagged": flagged,
            **optional,
            **values,
            "adapter_seed": adapter_seed,
        }
    )
    typed.attrs["lines"] = lines

    dup = typed.assign(_seed=typed["adapter_seed"].fillna(-1)).duplicated(["model", "_seed", "prompt_id"]).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        seed = typed["adapter_seed"].iat[i]
        same = "model and prompt_id" if pd.isna(seed) else f"model, adapter_seed {seed} and prompt_id"
        raise UserError(
            f"{_where(typed, i, source)}: a second row for the same {same}",
            "keep one row per (model, prompt), or per (model, adapter, prompt) with an adapter_seed column",
        )
    cats = typed.groupby("prompt_id", sort=False)["category"].nunique()
    if (cats > 1).any():
        pid = cats.index[cats.to_numpy() > 1][0]
        found = sorted(typed.loc[typed["prompt_id"] == pid, "category"].unique())
        raise UserError(
            f"{source}: prompt_id {pid!r} has more than one category ({', '.join(found)})",
            "give each prompt one category",
        )

    _check_profiles(typed, value_blank, source)
    per_cat = typed.groupby("category", sort=True)["model"].agg(["nunique", "first"])
    lonely = per_cat[per_cat["nunique"] < 2]
    if len(lonely):
        cat, model = lonely.index[0], lonely["first"].iat[0]
        raise UserError(
            f"{source}: category {cat!r} has rows from only one model ({model!r}); "
            "comparisons across models need the other models' answers to it",
            "check the category's spelling or add the other models' rows",
        )
    typed.attrs.pop("lines", None)
    return typed


def _adapter_seeds(table: pd.DataFrame, source: str) -> pd.Series:
    """The optional adapter_seed column as nullable integers (all empty when a table lacks it)."""
    if "adapter_seed" not in table.columns:
        return pd.Series(pd.array([pd.NA] * len(table), dtype="Int64"), index=table.index)
    blank = _blank(table["adapter_seed"])
    numbers = _numeric(table, "adapter_seed", source, blank)
    bad = np.flatnonzero(~blank & (numbers != np.round(numbers)))
    if bad.size:
        i = int(bad[0])
        raise UserError(
            f"{_where(table, i, source)}: adapter_seed {table['adapter_seed'].iat[i]!r} is not an integer",
            "write the training seed of the adapter that answered (empty for a model without adapters)",
        )
    out = pd.array([pd.NA if b else int(n) for b, n in zip(blank, numbers)], dtype="Int64")
    return pd.Series(out, index=table.index)


def n_adapters(table: pd.DataFrame) -> pd.Series:
    """Adapters per model (index): distinct adapter seeds, 1 for a model without any."""
    seeds = table["adapter_seed"] if "adapter_seed" in table.columns else pd.Series(pd.NA, index=table.index)
    counts = table.assign(_seed=seeds.astype("Int64").fillna(-1)).groupby("model", sort=True)["_seed"].nunique()
    return counts.astype(int)


def _check_profiles(typed: pd.DataFrame, value_blank: dict[str, np.ndarray], source: str) -> None:
    blank = pd.DataFrame({v: value_blank[v] for v in VALUES})
    blank["model"] = typed["model"].to_numpy()
    per_model = blank.groupby("model", sort=False)[list(VALUES)]
    partly = per_model.any().any(axis=1) & ~per_model.all().all(axis=1)
    if partly.any():
        rows = blank[list(VALUES)].to_numpy()
        mixed = typed["model"].isin(partly.index[partly.to_numpy()]).to_numpy()
        row_i = int(np.flatnonzero(mixed & rows.any(axis=1))[0])
        empty = [v for v, e in zip(VALUES, rows[row_i]) if e]
        raise UserError(
            f"{_where(typed, row_i, source)}: value cell{'s' if len(empty) > 1 else ''} {', '.join(empty)} empty",
            "give a model all 10 value scores on every row, or none (no target profile, e.g. vanilla)",
        )
    grouped = typed.groupby("model", sort=False)[list(VALUES)]
    low, high = grouped.min(), grouped.max()
    differs = (high > low).to_numpy()
    if differs.any():
        mi, vi = (int(a[0]) for a in np.nonzero(differs))
        model, v = low.index[mi], VALUES[vi]
        raise UserError(
            f"{source}: model {model!r} has different {v} scores on different rows "
            f"({low.iat[mi, vi]:g} and {high.iat[mi, vi]:g})",
            "a model has one target profile: repeat the same value scores on each of its rows",
        )


def load_results(path: str | Path) -> pd.DataFrame:
    """Read and validate a contract-2 results table (CSV or JSONL)."""
    frame, _ = read_table(path)
    return validate_results(frame, source=str(path))


# --------------------------------------------------------------------------------------------
# Aggregates


def profiled_models(table: pd.DataFrame) -> list[str]:
    """Models with a value profile, sorted; prompt-only baselines and controls are left out."""
    has = table.groupby("model", sort=True)[VALUES[0]].first().notna()
    return [m for m in has.index[has.to_numpy()] if model_kind(m) not in ("vanilla", "prompt_only", "control")]


def model_profiles(table: pd.DataFrame, models: list[str] | None = None) -> pd.DataFrame:
    """One row per model (index), the 10 value scores as columns (models with a profile only)."""
    models = profiled_models(table) if models is None else models
    first = table.groupby("model", sort=True)[list(VALUES)].first()
    return first.loc[models]


def categories(table: pd.DataFrame) -> list[str]:
    return sorted(table["category"].unique().tolist())


def model_means(table: pd.DataFrame, outcome: str, models: list[str] | None = None) -> pd.DataFrame:
    """Per model (rows) and category (columns, then "overall") the mean of `outcome`.

    "overall" is the mean over all of the model's prompts (each prompt weighs the same, so a
    category with more prompts weighs more). Cells a model did not answer are NaN.
    """
    data = table[table[outcome].notna()]
    if models is not None:
        data = data[data["model"].isin(models)]
    wide = data.pivot_table(index="model", columns="category", values=outcome, aggfunc="mean", sort=True)
    wide = wide.reindex(columns=[c for c in categories(table) if c in wide.columns])
    wide[OVERALL] = data.groupby("model", sort=True)[outcome].mean()
    if models is not None:
        wide = wide.reindex(models)
    wide.columns.name = None
    return wide


def summarise_models(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and category (and "overall"): kind, adapters, prompts, answers (prompts x adapters),
    mean score, share scored 5, flagged, harmful and compliance rates (NaN where the judge gives no
    such label)."""
    data = table.assign(score5=np.where(table["score"].notna(), (table["score"] >= 5).astype(float), np.nan))
    parts = []
    for category, group in [(c, data[data["category"] == c]) for c in categories(table)] + [(OVERALL, data)]:
        agg = group.groupby("model", sort=True).agg(
            n_prompts=("prompt_id", "nunique"),
            n_answers=("prompt_id", "size"),
            mean_score=("score", "mean"),
            share_score5=("score5", "mean"),
            flagged_rate=("flagged", "mean"),
            harmful_rate=("harmful", "mean"),
            compliance_rate=("compliance", "mean"),
        )
        agg.insert(0, "category", category)
        parts.append(agg.reset_index())
    out = pd.concat(parts, ignore_index=True)
    out.insert(1, "kind", out["model"].map(model_kind))
    out.insert(3, "n_adapters", out["model"].map(n_adapters(table)).astype(int))
    return out


def category_key(label: str) -> str:
    """A category label as a comparable key: 'Hate/Harass/Violence' -> 'hate_harass_violence'."""
    return normalise_key(re.sub(r"[,/&;:.()]+", " ", str(label)))
