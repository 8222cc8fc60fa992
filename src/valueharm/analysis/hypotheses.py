"""The hypothesis registry (corpora/hypotheses.yaml) and its check against correlations.csv.

Decision rule, for each hypothesis and each results category it matches, on the primary
method (default Spearman) and outcome (score, or flagged where the category has no scores):
    supported     q < alpha and sign(r) == expected_sign
    contradicted  q < alpha and sign(r) == -expected_sign
    inconclusive  otherwise: q >= alpha, r undefined, or no results category matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from valueharm.analysis.table import OUTCOMES, OVERALL, category_key
from valueharm.core.errors import UserError
from valueharm.core.values import resolve

HYPOTHESIS_COLUMNS: tuple[str, ...] = (
    "id",
    "value",
    "category",
    "expected_sign",
    "source",
    "results_category",
    "outcome",
    "method",
    "r",
    "p",
    "q",
    "ci_low",
    "ci_high",
    "n",
    "status",
    "note",
    "reference",
)
STATUSES = ("supported", "contradicted", "inconclusive")
SOURCES = ("study", "psychology")
_SIGNS = {"+": 1, "positive": 1, "+1": 1, "1": 1, "-": -1, "negative": -1, "-1": -1}
DECISION_RULE = (
    "supported: q < alpha and sign(r) equals expected_sign; contradicted: q < alpha and the opposite sign; "
    "inconclusive: otherwise (q >= alpha, r undefined, or the category is not in the results)"
)


@dataclass(frozen=True)
class Hypothesis:
    id: str
    value: str
    category: str
    expected_sign: int
    source: str
    rationale: str
    reference: str
    reported_as: str = ""
    match: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registry:
    hypotheses: tuple[Hypothesis, ...]
    categories: tuple[str, ...]
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # HEx-PHI key -> other spellings
    beavertails: dict[str, str] = field(default_factory=dict)  # BeaverTails label key -> HEx-PHI key

    def matches(self, hypothesis: Hypothesis, label: str) -> bool:
        """Whether a results category label tests this hypothesis (see hypotheses.yaml, "Category mapping")."""
        key = category_key(label)
        if key == hypothesis.category or key in hypothesis.match or key in self.spellings.get(hypothesis.category, ()):
            return True
        # study links are checked only where they were reported; psychology ones wherever the map points
        return hypothesis.source != "study" and self.beavertails.get(key) == hypothesis.category


def default_registry_path() -> Path:
    return Path(str(resources.files("valueharm") / "corpora" / "hypotheses.yaml"))


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and check a registry YAML (default: the packaged one); UserError naming the entry."""
    path = default_registry_path() if path is None else Path(path)
    if not path.exists():
        raise UserError(f"hypothesis registry {path} not found", "pass an existing YAML file with --hypotheses")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({exc.__class__.__name__})", "fix the registry file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("hypotheses"), list):
        raise UserError(
            f"{path}: expected a mapping with a `hypotheses` list", "see src/valueharm/corpora/hypotheses.yaml"
        )
    cats = tuple(category_key(c) for c in data.get("categories") or ())
    spellings = {
        category_key(k): tuple(category_key(o) for o in (v or ()))
        for k, v in (data.get("category_aliases") or {}).items()
    }
    beavertails = {
        category_key(k): category_key(v) for k, v in (data.get("beavertails_map") or {}).items() if v is not None
    }
    out: list[Hypothesis] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["hypotheses"]):
        where = f"{path}: hypothesis #{i + 1}"
        if not isinstance(entry, dict):
            raise UserError(
                f"{where} is not a mapping", "give id, value, category, expected_sign, source, rationale, reference"
            )
        missing = [
            k
            for k in ("id", "value", "category", "expected_sign", "source", "rationale", "reference")
            if not entry.get(k)
        ]
        if missing:
            raise UserError(f"{where} ({entry.get('id', '?')}) lacks {', '.join(missing)}", "fill in every field")
        hid = str(entry["id"])
        where = f"{path}: hypothesis {hid}"
        if hid in seen:
            raise UserError(f"{where}: id used twice", "give each hypothesis its own id")
        seen.add(hid)
        try:
            value = resolve(str(entry["value"]), allow_groups=False)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from exc
        category = category_key(entry["category"])
        if cats and category not in cats:
            raise UserError(f"{where}: unknown category {entry['category']!r}", "use one of " + ", ".join(cats))
        sign = _SIGNS.get(str(entry["expected_sign"]).strip().lower())
        if sign is None:
            raise UserError(
                f"{where}: expected_sign {entry['expected_sign']!r} is not '+' or '-'",
                'write expected_sign: "+" or "-"',
            )
        source = str(entry["source"]).strip().lower()
        if source not in SOURCES:
            raise UserError(f"{where}: source {entry['source']!r}", "use study or psychology")
        match = entry.get("match") or []
        if not isinstance(match, list):
            raise UserError(f"{where}: match must be a list of category labels")
        out.append(
            Hypothesis(
                hid,
                value,
                category,
                sign,
                source,
                " ".join(str(entry["rationale"]).split()),
                " ".join(str(entry["reference"]).split()),
                str(entry.get("reported_as") or ""),
                tuple(category_key(m) for m in match),
            )
        )
    return Registry(tuple(out), cats, spellings, beavertails)


def decide(r: float, q: float, expected_sign: int, alpha: float = 0.05) -> str:
    """The registry's decision rule for one observed correlation."""
    if not (np.isfinite(r) and np.isfinite(q)) or q >= alpha or r == 0:
        return "inconclusive"
    return "supported" if np.sign(r) == expected_sign else "contradicted"


def _untested(base: dict, results_category: str, note: str) -> dict:
    """A hypotheses.csv row for a hypothesis the results could not test: inconclusive, every statistic NaN."""
    stats = dict.fromkeys(("r", "p", "q", "ci_low", "ci_high", "n"), np.nan)
    return {
        **base,
        "results_category": results_category,
        "outcome": "",
        **stats,
        "status": "inconclusive",
        "note": note,
    }


def evaluate_hypotheses(
    registry: Registry, correlations: pd.DataFrame, method: str = "spearman", outcomes=OUTCOMES, alpha: float = 0.05
) -> pd.DataFrame:
    """hypotheses.csv rows (HYPOTHESIS_COLUMNS): one per hypothesis and matching results category."""
    corr = correlations[correlations["method"] == method]
    labels = sorted(c for c in correlations["category"].unique() if c != OVERALL)
    rows: list[dict] = []
    for h in registry.hypotheses:
        base = {
            "id": h.id,
            "value": h.value,
            "category": h.category,
            "expected_sign": "+" if h.expected_sign > 0 else "-",
            "source": h.source,
            "method": method,
            "reference": h.reference,
        }
        matched = [c for c in labels if registry.matches(h, c)]
        if not matched:
            rows.append(_untested(base, "", f"not tested: no category of the results matches {h.category}"))
            continue
        for label in matched:
            cell = corr[(corr["value"] == h.value) & (corr["category"] == label)]
            for outcome in outcomes:
                sel = cell[cell["outcome"] == outcome]
                if len(sel):
                    break
            if not len(sel):
                rows.append(_untested(base, label, f"not tested: no {method} correlation for {label}"))
                continue
            row = sel.iloc[0]
            status = decide(row["r"], row["q"], h.expected_sign, alpha)
            if not np.isfinite(row["r"]):
                note = f"undefined: {row['note']}"
            elif status == "inconclusive":
                note = f"q = {row['q']:.3g} >= {alpha:g}"
            else:
                note = ""
            rows.append(
                {
                    **base,
                    "results_category": label,
                    "outcome": outcome,
                    "r": row["r"],
                    "p": row["p"],
                    "q": row["q"],
                    "ci_low": row["ci_low"],
                    "ci_high": row["ci_high"],
                    "n": row["n"],
                    "status": status,
                    "note": note,
                }
            )
    out = pd.DataFrame(rows, columns=list(HYPOTHESIS_COLUMNS))
    out["n"] = out["n"].astype("Int64")
    return out
