"""Value-labelled argument corpora: one loader for the three formats the project meets.

Every loader returns a plain list of `Argument(id, conclusion, stance, premise, labels)` where
`labels` maps each of the ten canonical values (`values.VALUES`, in that order) to 0 or 1.

Formats
-------
1. **10-value table** (our authored corpus `corpora/value_arguments.tsv`, and the study's
   `valueEval_10.csv`): tab-separated (comma-separated is accepted too), columns `Conclusion`,
   `Stance`, `Premise` and one 0/1 column per basic value. The id comes from a column named `id`
   or `Argument ID`, or from an unnamed first column (the real file's pandas index); otherwise the
   row number is used. Value columns are found **by name** (any case; `-`, `_` and spaces alike),
   never by position - the study's release read them by position and shifted them one column.
2. **Touche23-ValueEval release**: `arguments-<split>.tsv` (`Argument ID`, `Conclusion`,
   `Stance`, `Premise`) plus `labels-<split>.tsv` (`Argument ID` and the 20 level-2 value columns).
   Pass a directory (every `arguments-*.tsv` that has a matching `labels-*.tsv` is loaded, in the
   order training, validation, test, then others by name; arguments files without labels are
   skipped) or one `arguments-*.tsv` file (its `labels-*.tsv` sibling is required).
   The 20 level-2 values are collapsed to the 10 basic values with `LEVEL2_TO_BASIC` below: a
   basic value is labelled when any level-2 value mapped to it is labelled.

The level-2 -> basic mapping
----------------------------
Eighteen level-2 values are sub-values of one basic value and map to it by name
(e.g. "Self-direction: thought" -> self_direction; ValueEval's extra "Universalism: objectivity"
-> universalism). Two have no parent in the refined theory (Schwartz et al. 2012): **Face** sits
on the circle between Power and Security, **Humility** between Conformity/Tradition and
Benevolence. We map each to the basic value whose items carried it in the original 10-value
instruments (Schwartz 1992, SVS): "preserving my public image" was a Power item and "humble" a
Tradition item, so **Face -> power** and **Humility -> tradition**. Both choices are one line in
the table; `load_arguments(..., level2_map=...)` accepts another table (values may be a tuple of
several basic values, e.g. Face -> ("power", "security") for the neighbours reading).

Bad input (missing file, missing column - named -, no rows, no labels at all, labels other than
0/1, unknown stance) raises `UserError` with one line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from valueharm.core.errors import UserError
from valueharm.core.values import DISPLAY, VALUES, normalise_key

__all__ = [
    "Argument", "LEVEL2_TO_BASIC", "STANCES", "load_arguments", "load_value_table", "load_touche",
    "label_counts", "to_dataset", "mapping_table",
]

# Canonical stance spellings (the datasets' own spelling); accepted variants map onto them.
STANCES: tuple[str, str] = ("in favor of", "against")
_STANCE_ALIASES = {
    "in favor of": "in favor of", "in favour of": "in favor of", "in favor": "in favor of",
    "in favour": "in favor of", "for": "in favor of", "pro": "in favor of", "favor": "in favor of",
    "against": "against", "con": "against", "contra": "against",
}

# Touche23-ValueEval level-2 value -> basic value(s). See the module docstring for Face/Humility.
LEVEL2_TO_BASIC: dict[str, tuple[str, ...]] = {
    "Self-direction: thought": ("self_direction",),
    "Self-direction: action": ("self_direction",),
    "Stimulation": ("stimulation",),
    "Hedonism": ("hedonism",),
    "Achievement": ("achievement",),
    "Power: dominance": ("power",),
    "Power: resources": ("power",),
    "Face": ("power",),                      # SVS 1992: "preserving my public image" is a Power item
    "Security: personal": ("security",),
    "Security: societal": ("security",),
    "Tradition": ("tradition",),
    "Conformity: rules": ("conformity",),
    "Conformity: interpersonal": ("conformity",),
    "Humility": ("tradition",),              # SVS 1992: "humble" is a Tradition item
    "Benevolence: caring": ("benevolence",),
    "Benevolence: dependability": ("benevolence",),
    "Universalism: concern": ("universalism",),
    "Universalism: nature": ("universalism",),
    "Universalism: tolerance": ("universalism",),
    "Universalism: objectivity": ("universalism",),
}

_TEXT_COLUMNS = ("conclusion", "stance", "premise")
_ID_COLUMNS = ("id", "argument_id", "argumentid", "", "unnamed_0")
_SPLIT_ORDER = {"training": 0, "train": 0, "validation": 1, "valid": 1, "test": 2}


@dataclass(frozen=True)
class Argument:
    """One argument: `stance` is "in favor of" or "against"; `labels` has all ten values, 0/1."""

    id: str
    conclusion: str
    stance: str
    premise: str
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def values(self) -> tuple[str, ...]:
        """The labelled values, in canonical order."""
        return tuple(v for v in VALUES if self.labels.get(v, 0))


def mapping_table(level2_map: Mapping[str, Sequence[str] | str] | None = None) -> str:
    """The level-2 -> basic mapping as a Markdown table (for reports and the README)."""
    table = _check_level2_map(level2_map or LEVEL2_TO_BASIC)
    lines = ["| Touche23 level-2 value | basic value(s) |", "|---|---|"]
    lines += [f"| {k} | {', '.join(DISPLAY[v] for v in vs)} |" for k, vs in table.items()]
    return "\n".join(lines) + "\n"


def load_arguments(path: str | Path, *, labels_path: str | Path | None = None,
                   level2_map: Mapping[str, Sequence[str] | str] | None = None) -> list[Argument]:
    """Load any supported corpus (format detected from the path and header); see module doc."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"argument corpus {path} not found", "check the path in params.yaml")
    if path.is_dir():
        return load_touche(path, level2_map=level2_map)
    header = _header(path)
    if "argument_id" in header and not _value_columns(header, required=False):
        return load_touche(path, labels_path=labels_path, level2_map=level2_map)
    return load_value_table(path)


# ----------------------------------------------------------------------------- 10-value table

def load_value_table(path: str | Path) -> list[Argument]:
    """A table with Conclusion, Stance, Premise and ten 0/1 value columns read by name."""
    path = Path(path)
    frame = _read_table(path)
    keys = [normalise_key(c) for c in frame.columns]
    _require_columns(path, frame.columns, keys, _TEXT_COLUMNS)
    value_cols = _value_columns(list(frame.columns), required=True, where=path)
    id_col = next((c for c, k in zip(frame.columns, keys) if k in _ID_COLUMNS), None)
    text = {k: frame[frame.columns[keys.index(k)]].tolist() for k in _TEXT_COLUMNS}
    labels = {v: _binary(frame[c], path, c) for v, c in value_cols.items()}
    ids = [s.strip() for s in frame[id_col].tolist()] if id_col is not None else [str(i) for i in range(len(frame))]
    out = [
        Argument(
            id=ids[i],
            conclusion=_clean(text["conclusion"][i]),
            stance=_stance(text["stance"][i], path, i),
            premise=_clean(text["premise"][i]),
            labels={v: labels[v][i] for v in VALUES},
        )
        for i in range(len(frame))
    ]
    if id_col is not None and len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"{path}: argument id {dup!r} appears more than once", "give every argument its own id")
    return _check_corpus(out, path)


# ----------------------------------------------------------------------------- Touche23

def load_touche(path: str | Path, *, labels_path: str | Path | None = None,
                level2_map: Mapping[str, Sequence[str] | str] | None = None) -> list[Argument]:
    """Touche23-ValueEval arguments + level-2 labels, collapsed to the ten basic values."""
    path = Path(path)
    table = _check_level2_map(level2_map or LEVEL2_TO_BASIC)
    if path.is_dir():
        pairs = []
        for arg_file in sorted(path.glob("arguments-*.tsv")):
            split = arg_file.name[len("arguments-"):-len(".tsv")]
            lab_file = path / f"labels-{split}.tsv"
            if lab_file.exists():
                pairs.append((_SPLIT_ORDER.get(split, 9), split, arg_file, lab_file))
        if not pairs:
            raise UserError(f"{path} holds no arguments-<split>.tsv with a matching labels-<split>.tsv",
                            "point the corpus param at a Touche23-ValueEval folder or one arguments file")
        pairs.sort()
        out: list[Argument] = []
        for _, _, arg_file, lab_file in pairs:
            out += _touche_pair(arg_file, lab_file, table)
    else:
        if labels_path is None:
            name = path.name
            if not name.startswith("arguments-"):
                raise UserError(f"cannot find the labels file for {path}",
                                "name it arguments-<split>.tsv beside labels-<split>.tsv, or pass labels_path")
            labels_path = path.with_name("labels-" + name[len("arguments-"):])
        labels_path = Path(labels_path)
        if not labels_path.exists():
            raise UserError(f"labels file {labels_path} not found (needed for {path.name})",
                            "download the matching labels-<split>.tsv of Touche23-ValueEval")
        out = _touche_pair(path, labels_path, table)
    seen: set[str] = set()
    for a in out:
        if a.id in seen:
            raise UserError(f"argument id {a.id} appears twice in {path}", "remove the duplicate rows")
        seen.add(a.id)
    return _check_corpus(out, path)


def _touche_pair(arg_file: Path, lab_file: Path, table: dict[str, tuple[str, ...]]) -> list[Argument]:
    args = _read_table(arg_file)
    labs = _read_table(lab_file)
    akeys = [normalise_key(c) for c in args.columns]
    _require_columns(arg_file, args.columns, akeys, ("argument_id",) + _TEXT_COLUMNS)
    lkeys = [normalise_key(c) for c in labs.columns]
    _require_columns(lab_file, labs.columns, lkeys, ("argument_id",))
    by_key = {_level2_key(c): c for c in labs.columns}
    missing = [name for name in table if _level2_key(name) not in by_key]
    if missing:
        raise UserError(f"{lab_file} lacks the level-2 value column(s) {', '.join(repr(m) for m in missing)}",
                        "use the level-2 labels-<split>.tsv of Touche23-ValueEval (not level1-labels)")
    a_id = args.columns[akeys.index("argument_id")]
    l_id = labs.columns[lkeys.index("argument_id")]
    level2 = {name: _binary(labs[by_key[_level2_key(name)]], lab_file, by_key[_level2_key(name)]) for name in table}
    label_rows: dict[str, int] = {}
    for i, arg_id in enumerate(labs[l_id].astype(str)):
        label_rows.setdefault(arg_id.strip(), i)
    col = {k: args[args.columns[akeys.index(k)]].tolist() for k in _TEXT_COLUMNS}
    arg_ids = args[a_id].tolist()
    out = []
    for i in range(len(args)):
        arg_id = str(arg_ids[i]).strip()
        if arg_id not in label_rows:
            raise UserError(f"argument {arg_id} of {arg_file.name} has no row in {lab_file.name}",
                            "use the arguments and labels files of the same split")
        j = label_rows[arg_id]
        basic = dict.fromkeys(VALUES, 0)
        for name, targets in table.items():
            if level2[name][j]:
                for v in targets:
                    basic[v] = 1
        out.append(Argument(arg_id, _clean(col["conclusion"][i]), _stance(col["stance"][i], arg_file, i),
                            _clean(col["premise"][i]), basic))
    return out


def _level2_key(name: str) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def _check_level2_map(table: Mapping[str, Sequence[str] | str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name, targets in table.items():
        targets = (targets,) if isinstance(targets, str) else tuple(targets)
        resolved = []
        for t in targets:
            key = normalise_key(t)
            if key not in VALUES:
                raise UserError(f"level-2 mapping sends {name!r} to {t!r}, which is not a basic value",
                                "valid values: " + ", ".join(VALUES))
            resolved.append(key)
        if not resolved:
            raise UserError(f"level-2 mapping gives {name!r} no basic value", "map it to at least one value")
        out[str(name)] = tuple(resolved)
    if not out:
        raise UserError("the level-2 mapping is empty", "use LEVEL2_TO_BASIC or list the 20 level-2 values")
    return out


# ----------------------------------------------------------------------------- helpers

def label_counts(arguments: Sequence[Argument]) -> dict[str, int]:
    """How many arguments carry each value label (canonical order)."""
    return {v: sum(a.labels.get(v, 0) for a in arguments) for v in VALUES}


def to_dataset(arguments: Sequence[Argument]):
    """The corpus as a `datasets.Dataset` (columns id, conclusion, stance, premise + ten values)."""
    from datasets import Dataset  # imported lazily: it is slow to import and only some callers need it

    frame = pd.DataFrame(
        [{"id": a.id, "conclusion": a.conclusion, "stance": a.stance, "premise": a.premise, **a.labels}
         for a in arguments],
        columns=["id", "conclusion", "stance", "premise", *VALUES],
    )
    return Dataset.from_pandas(frame, preserve_index=False)


def _header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text", "save the corpus as UTF-8") from exc
    delimiter = "\t" if "\t" in first else ","
    return [normalise_key(c) for c in next(csv.reader([first], delimiter=delimiter), [])]


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"{path} not found", "check the corpus path")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text", "save the corpus as UTF-8") from exc
    if not first.strip():
        raise UserError(f"{path} is empty", "give a corpus with a header row and at least one argument")
    delimiter = "\t" if "\t" in first else ","
    try:
        frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError) as exc:
        raise UserError(f"{path} could not be parsed as a table ({exc.__class__.__name__})",
                        "check that every row has the header's number of fields") from exc
    frame.columns = ["" if str(c).startswith("Unnamed: 0") else str(c) for c in frame.columns]
    return frame


def _require_columns(path: Path, columns, keys: list[str], needed: Sequence[str]) -> None:
    missing = [n for n in needed if n not in keys]
    if missing:
        pretty = {"argument_id": "Argument ID", "conclusion": "Conclusion", "stance": "Stance", "premise": "Premise"}
        names = ", ".join(pretty.get(m, m) for m in missing)
        raise UserError(f"{path} has no column {names} (found: {', '.join(map(str, columns)) or 'none'})",
                        "add the column or point at the right file")


def _value_columns(columns: Sequence[str], required: bool, where: Path | None = None) -> dict[str, str]:
    """Map each canonical value to its column, matching names with normalise_key."""
    found: dict[str, str] = {}
    squashed = {v.replace("_", ""): v for v in VALUES}
    for c in columns:
        key = normalise_key(str(c))
        value = key if key in VALUES else squashed.get(key.replace("_", ""))
        if value is None:
            continue
        if value in found:
            raise UserError(f"{where}: columns {found[value]!r} and {c!r} both name {value}", "keep one of them")
        found[value] = str(c)
    if required:
        missing = [DISPLAY[v] for v in VALUES if v not in found]
        if missing:
            raise UserError(f"{where} has no value column {', '.join(missing)}",
                            "a 10-value corpus needs one 0/1 column per value: " + ", ".join(DISPLAY[v] for v in VALUES))
    return found


_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no", ""}


def _binary(series: pd.Series, path: Path, column: str) -> list[int]:
    out = []
    for i, raw in enumerate(series.tolist()):
        cell = str(raw).strip().lower()
        if cell in _TRUE:
            out.append(1)
        elif cell in _FALSE and cell != "":
            out.append(0)
        else:
            raise UserError(f"{path}: column {column!r} row {i + 1} holds {raw!r}, not 0/1",
                            "value labels must be 0 or 1")
    return out


def _stance(raw: object, path: Path, row: int) -> str:
    key = " ".join(str(raw).strip().lower().split())
    if key not in _STANCE_ALIASES:
        raise UserError(f"{path}: row {row + 1} has stance {raw!r}", "use 'in favor of' or 'against'")
    return _STANCE_ALIASES[key]


def _clean(raw: object) -> str:
    return " ".join(str(raw).split())


def _check_corpus(arguments: list[Argument], path: Path) -> list[Argument]:
    if not arguments:
        raise UserError(f"{path} holds no arguments", "give a corpus with at least one labelled argument")
    empty = [a.id for a in arguments if not a.conclusion or not a.premise]
    if empty:
        raise UserError(f"{path}: argument {empty[0]} has an empty conclusion or premise",
                        f"fill or remove it ({len(empty)} such row(s))")
    if not any(any(a.labels.values()) for a in arguments):
        raise UserError(f"{path} carries no value label at all (every label is 0)",
                        "label the arguments with the values they appeal to")
    return arguments
