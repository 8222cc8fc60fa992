"""Harm benchmarks in one schema, with HEx-PHI's 11 categories as the canonical taxonomy.

Every loader returns a `Benchmark`: a name and a list of items, each a plain dict

    {"id": str, "prompt": str, "category": str, "source_category": str, "source": str}

where `category` is one of `CATEGORIES` or `UNMAPPED`, and `source_category` is the label the
source file gave (kept verbatim so nothing is lost). `Benchmark.report()` counts items per
canonical category and lists every source category that did not map, so an unmapped or unknown
label is reported, never dropped.

Sources (`LOADERS`):
    valueharm    the authored mini benchmark (src/valueharm/corpora/harm_benchmark.jsonl;
                 data/benchmarks/harm_benchmark.jsonl in the pipeline): id, category, prompt
    harmbench    HarmBench text behaviours, a folder with harmbench_behaviors_text_{test,val}.csv;
                 only FunctionalCategory "standard" rows (159 test + 41 val)
    hexphi       HEx-PHI as one CSV with columns category, prompt (the study's release)
    beavertails  BeaverTails-Evaluation CSV: (index), prompt, category, category_id
    advbench     AdvBench harmful_behaviors.csv: goal, target (no categories; keyword rule)
    rtp          RealToxicityPrompts prompts.jsonl ({"prompt": {"text": ...}, "challenging": bool})

Crosswalks to the canonical taxonomy (`CROSSWALKS`; a value of None means "no counterpart in
HEx-PHI's taxonomy", reported as unmapped):

HarmBench semantic categories
    chemical_biological           -> physical_harm   (weapons / dangerous substances)
    cybercrime_intrusion          -> malware
    harassment_bullying           -> hate_harass_violence
    harmful                       -> physical_harm   (HarmBench's "generally harmful" advice that endangers people)
    illegal                       -> illegal_activity
    misinformation_disinformation -> fraud_deception (HEx-PHI puts disinformation under fraud/deception)
    copyright                     -> None            (not a harm category here; non-standard rows are not loaded anyway)

BeaverTails' 14 categories
    animal_abuse                                    -> hate_harass_violence (violence, against animals)
    child_abuse                                     -> child_abuse
    controversial_topics,politics                   -> political_campaigning (closest; partial overlap)
    discrimination,stereotype,injustice             -> hate_harass_violence
    drug_abuse,weapons,banned_substance             -> physical_harm (weapons and drugs endanger people)
    financial_crime,property_crime,theft            -> illegal_activity
    hate_speech,offensive_language                  -> hate_harass_violence
    misinformation_regarding_ethics,laws_and_safety -> fraud_deception
    non_violent_unethical_behavior                  -> None (too broad for any one HEx-PHI category)
    privacy_violation                               -> privacy_violation
    self_harm                                       -> physical_harm (HEx-PHI's physical harm includes self-harm)
    sexually_explicit,adult_content                 -> adult_content
    terrorism,organized_crime                       -> illegal_activity
    violence,aiding_and_abetting,incitement         -> hate_harass_violence

HEx-PHI file labels map to themselves, plus `child_abuse_content` -> child_abuse,
`privacy_violation_activity` -> privacy_violation, the display names ("Hate/Harass/Violence")
and the numbered file names of the original release (category_1 .. category_11).

AdvBench has no categories: `advbench_category()` applies `ADVBENCH_KEYWORDS`, an ordered list
of (category, regular expression) rules on the lower-cased goal; the first rule that matches wins,
and a goal no rule matches is unmapped (its source_category is "advbench:none"). The rules are
deliberately coarse; the share left unmapped on the real file is reported by `report()`.

RealToxicityPrompts is scored for toxicity, not harm categories: every prompt is unmapped, with
source_category "challenging" or "not_challenging".

Sampling: `limit` keeps at most that many items, stratified by canonical category (round-robin
over categories in sorted order, each category's items shuffled with `random.Random(seed)`), so
small limits still cover every category; kept items stay in file order. `sampling: "first"`
keeps the first `limit` items instead (the study took the first 3,000 RealToxicityPrompts).
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valueharm.core.atomic import iter_jsonl
from valueharm.core.categories import HARM_CATEGORIES as CATEGORIES
from valueharm.core.errors import UserError
from valueharm.core.registry import Registry

UNMAPPED = "unmapped"

DISPLAY: dict[str, str] = {
    "illegal_activity": "Illegal activity",
    "child_abuse": "Child abuse content",
    "hate_harass_violence": "Hate/harass/violence",
    "malware": "Malware",
    "physical_harm": "Physical harm",
    "economic_harm": "Economic harm",
    "fraud_deception": "Fraud/deception",
    "adult_content": "Adult content",
    "political_campaigning": "Political campaigning",
    "privacy_violation": "Privacy violation activity",
    "tailored_financial_advice": "Tailored financial advice",
}

FIELDS: tuple[str, ...] = ("id", "prompt", "category", "source_category", "source")


def _key(label: str) -> str:
    """'Hate/Harass/Violence' -> 'hate_harass_violence'; keeps commas (BeaverTails joins labels with them)."""
    return re.sub(r"[^a-z0-9,]+", "_", str(label).strip().lower()).strip("_")


_HEXPHI = {c: c for c in CATEGORIES}
_HEXPHI.update(
    {
        "child_abuse_content": "child_abuse",
        "privacy_violation_activity": "privacy_violation",
        "hate_harassment_violence": "hate_harass_violence",
        "fraud": "fraud_deception",
    }
)
_HEXPHI.update({_key(v): k for k, v in DISPLAY.items()})
_HEXPHI.update({f"category_{i}": c for i, c in enumerate(CATEGORIES, start=1)})

CROSSWALKS: dict[str, dict[str, str | None]] = {
    "valueharm": dict(_HEXPHI),
    "hexphi": dict(_HEXPHI),
    "harmbench": {
        "chemical_biological": "physical_harm",
        "cybercrime_intrusion": "malware",
        "harassment_bullying": "hate_harass_violence",
        "harmful": "physical_harm",
        "illegal": "illegal_activity",
        "misinformation_disinformation": "fraud_deception",
        "copyright": None,
    },
    "beavertails": {
        "animal_abuse": "hate_harass_violence",
        "child_abuse": "child_abuse",
        "controversial_topics,politics": "political_campaigning",
        "discrimination,stereotype,injustice": "hate_harass_violence",
        "drug_abuse,weapons,banned_substance": "physical_harm",
        "financial_crime,property_crime,theft": "illegal_activity",
        "hate_speech,offensive_language": "hate_harass_violence",
        "misinformation_regarding_ethics,laws_and_safety": "fraud_deception",
        "non_violent_unethical_behavior": None,
        "privacy_violation": "privacy_violation",
        "self_harm": "physical_harm",
        "sexually_explicit,adult_content": "adult_content",
        "terrorism,organized_crime": "illegal_activity",
        "violence,aiding_and_abetting,incitement": "hate_harass_violence",
    },
    "advbench": {f"advbench:{c}": c for c in CATEGORIES} | {"advbench:none": None},
    "rtp": {"challenging": None, "not_challenging": None},
}

# Ordered: specific rules first. Applied to the lower-cased AdvBench goal; first match wins.
ADVBENCH_KEYWORDS: tuple[tuple[str, str], ...] = (
    (
        "child_abuse",
        r"child (?:porn|sexual|abuse|exploitation)|sexual(?:ly)? .*\b(?:minor|child)|\bgroom|molest|abuse .{0,20}\bchild",
    ),
    ("adult_content", r"\bporn|sexually explicit|\bsexual\b|prostitut|\berotic|\bnude\b"),
    (
        "malware",
        r"virus|malware|ransomware|\bworm\b|trojan|keylogger|botnet|rootkit|\bhack|hijack|exploit (?:a |the )?vulnerab|ddos|denial[- ]of[- ]service|crack (?:a |the )?password|brute[- ]force|sql injection|cyber ?attack|antivirus|crash a computer|bypass security|unauthori[sz]ed access|passwords|denies access|digital rights management",
    ),
    (
        "economic_harm",
        r"insider trading|manipulat\w* (?:the |financial )?(?:stock|market|price)|financial markets?|stock market|pyramid scheme|ponzi|gambl|tax evasion|evade taxes",
    ),
    (
        "fraud_deception",
        r"fraud|\bscam|phishing|\bspam|counterfeit|\bforg(?:e|ery|ing)|falsif|impersonat|fake (?:news|review|id|identit|account|profile|website|charity|product)|misinformation|disinformation|hoax|conspiracy|cheat|plagiari|deceiv|deceptive|mislead|false (?:information|accusation|claim)|defam|without any (?:scientific )?evidence|customer ratings|not even used",
    ),
    (
        "privacy_violation",
        r"personal (?:information|data)|private (?:information|data)|sensitive information|\bspy\b|spy on|spies on|surveil|stalk|\bdox|track (?:someone|a person|user|people)|location of|identity theft|without (?:their|his|her) (?:knowledge|consent)|records user activity|user data",
    ),
    ("political_campaigning", r"election|political|campaign|\bvot(?:e|er|ing)\b|politician|propaganda"),
    ("tailored_financial_advice", r"\binvest(?:ment|ing)? (?:advice|strateg)|which stocks?|financial advice"),
    (
        "physical_harm",
        r"bomb|explosive|weapon|firearm|\bguns?\b|poison|suicide|self[- ]harm|eating disorder|anorexi|bulimi|\bdrugs?\b|overdose|dangerous|lethal|toxic|chemical|biological|\bkill|murder|assassinat|injur|physical harm|physically|assault|hit-and-run|cause (?:it to )?(?:a )?crash|accidents|harm (?:themselves|yourself|oneself|others|to passengers)|reckless|start a fire",
    ),
    (
        "hate_harass_violence",
        r"\bhate|racis|racial|discriminat|harass|bully|cyberbull|violen|terror|incit|extremis|radicali|oppress|dehumaniz|torture|abduct|harm animals|inflammatory|minority|minorities|religio|ethnic|lgbt|gender|threat",
    ),
    (
        "illegal_activity",
        r"steal|theft|shoplift|\brob\b|robbery|burglar|launder|smuggl|traffick|illegal|evade (?:the )?(?:law|police|authorit)|break into|pick a lock|infiltrate|escape from a correctional|sabotag|vandal|\bcrime|criminal|piracy|pirat",
    ),
)
_ADVBENCH_RULES = tuple((c, re.compile(p)) for c, p in ADVBENCH_KEYWORDS)


def advbench_category(goal: str) -> str:
    """The AdvBench pseudo-label for a goal: 'advbench:<category>' or 'advbench:none'."""
    text = goal.lower()
    for category, rule in _ADVBENCH_RULES:
        if rule.search(text):
            return f"advbench:{category}"
    return "advbench:none"


def map_category(source: str, source_category: str) -> tuple[str, bool]:
    """(canonical category or UNMAPPED, known) for a source label.

    known is False when the label is not in the source's crosswalk at all (a new or misspelt
    label); such items are kept as UNMAPPED and listed under `unknown` in the report.
    """
    if source not in CROSSWALKS:
        raise UserError(
            f"no category crosswalk for benchmark source {source!r}", "valid sources: " + ", ".join(sorted(CROSSWALKS))
        )
    walk = CROSSWALKS[source]
    key = _key(source_category) if source not in ("advbench",) else str(source_category)
    if key in walk:
        return (walk[key] or UNMAPPED), True
    return UNMAPPED, False


@dataclass
class Benchmark:
    name: str
    items: list[dict[str, Any]]
    path: str | None = None
    n_available: int | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def report(self) -> dict[str, Any]:
        """Counts per canonical category, and every source label that did not map (never silent)."""
        per_category = Counter(item["category"] for item in self.items)
        unmapped: Counter[str] = Counter()
        unknown: Counter[str] = Counter()
        for item in self.items:
            if item["category"] != UNMAPPED:
                continue
            _, known = map_category(item["source"], item["source_category"])
            (unmapped if known else unknown)[item["source_category"]] += 1
        return {
            "benchmark": self.name,
            "n": len(self.items),
            "n_available": self.n_available if self.n_available is not None else len(self.items),
            "per_category": {c: per_category.get(c, 0) for c in (*CATEGORIES, UNMAPPED)},
            "unmapped": dict(sorted(unmapped.items())),
            "unknown": dict(sorted(unknown.items())),
            "notes": list(self.notes),
        }


def _make_items(source: str, records: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    items = []
    for item_id, prompt, source_category in records:
        category, _ = map_category(source, source_category)
        items.append(
            {
                "id": str(item_id),
                "prompt": prompt,
                "category": category,
                "source_category": str(source_category),
                "source": source,
            }
        )
    return items


def _check(items: list[dict[str, Any]], name: str, path: Path) -> None:
    if not items:
        raise UserError(
            f"benchmark {name} at {path} has no prompts", "check the file, or pick another benchmark in params.yaml"
        )
    seen: set[str] = set()
    for item in items:
        if not item["prompt"].strip():
            raise UserError(
                f"benchmark {name} at {path}: item {item['id']} has an empty prompt", "fix or remove that row"
            )
        if item["id"] in seen:
            raise UserError(f"benchmark {name} at {path}: duplicate id {item['id']!r}", "ids must be unique")
        seen.add(item["id"])


def _require_file(path: Path, name: str) -> Path:
    if not path.is_file():
        raise UserError(
            f"benchmark {name}: file {path} not found",
            "run `valueharm data init` for the packaged benchmarks, or set its path in params.yaml",
        )
    return path


def _read_csv(path: Path, name: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in required if c not in columns]
        if missing:
            raise UserError(
                f"benchmark {name}: {path} lacks column(s) {', '.join(missing)} (has {', '.join(columns) or 'none'})",
                f"give a CSV with columns {', '.join(required)}",
            )
        return [{(k or "").strip(): (v or "") for k, v in row.items()} for row in reader]


# --- loaders ------------------------------------------------------------------------------------

Loader = Callable[[Path], list[dict[str, Any]]]
LOADERS: Registry[Loader] = Registry("benchmark loader")
ALIASES = {
    "default": "valueharm",
    "harm_benchmark": "valueharm",
    "hex-phi": "hexphi",
    "hex_phi": "hexphi",
    "beavertails-evaluation": "beavertails",
    "beavertails_evaluation": "beavertails",
    "harmful_behaviors": "advbench",
    "realtoxicityprompts": "rtp",
    "real_toxicity_prompts": "rtp",
}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    """`@register_loader("name")` on a function path -> items adds a benchmark (docs/adding_a_benchmark.md)."""
    return LOADERS.register(name)


@register_loader("valueharm")
def _load_valueharm(path: Path) -> list[dict[str, Any]]:
    _require_file(path, "valueharm")
    records = []
    for number, row in iter_jsonl(path, "give one JSON object per line with id, category, prompt"):
        try:
            records.append((row["id"], row["prompt"], row["category"]))
        except KeyError as exc:
            raise UserError(f"benchmark valueharm: {path} line {number} has no {exc.args[0]}", "fix that line") from None
    return _make_items("valueharm", records)


@register_loader("harmbench")
def _load_harmbench(path: Path, splits: tuple[str, ...] = ("test", "val")) -> list[dict[str, Any]]:
    files = [path] if path.is_file() else [path / f"harmbench_behaviors_text_{s}.csv" for s in splits]
    records = []
    for file in files:
        rows = _read_csv(
            _require_file(file, "harmbench"),
            "harmbench",
            ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID"),
        )
        records += [
            (r["BehaviorID"], r["Behavior"].strip(), r["SemanticCategory"])
            for r in rows
            if r["FunctionalCategory"].strip() == "standard"
        ]
    return _make_items("harmbench", records)


@register_loader("hexphi")
def _load_hexphi(path: Path) -> list[dict[str, Any]]:
    rows = _read_csv(_require_file(path, "hexphi"), "hexphi", ("category", "prompt"))
    counters: Counter[str] = Counter()
    records = []
    for r in rows:
        label = _key(r["category"]) or "none"
        counters[label] += 1
        records.append((f"hexphi-{label}-{counters[label]:03d}", r["prompt"].strip(), r["category"].strip()))
    return _make_items("hexphi", records)


@register_loader("beavertails")
def _load_beavertails(path: Path) -> list[dict[str, Any]]:
    rows = _read_csv(_require_file(path, "beavertails"), "beavertails", ("prompt", "category"))
    records = []
    for number, r in enumerate(rows):
        index = r.get("", "").strip() or str(number)
        records.append(
            (f"beavertails-{int(index) if index.isdigit() else index:0>3}", r["prompt"].strip(), r["category"].strip())
        )
    return _make_items("beavertails", records)


@register_loader("advbench")
def _load_advbench(path: Path) -> list[dict[str, Any]]:
    rows = _read_csv(_require_file(path, "advbench"), "advbench", ("goal",))
    return _make_items(
        "advbench",
        [(f"advbench-{i:03d}", r["goal"].strip(), advbench_category(r["goal"])) for i, r in enumerate(rows, start=1)],
    )


@register_loader("rtp")
def _load_rtp(path: Path) -> list[dict[str, Any]]:
    _require_file(path, "rtp")
    records = []
    for number, row in iter_jsonl(path, "give RealToxicityPrompts' prompts.jsonl"):
        try:
            text = row["prompt"]["text"]
        except (KeyError, TypeError) as exc:
            raise UserError(
                f"benchmark rtp: {path} line {number} has no prompt.text ({exc.__class__.__name__})",
                "give RealToxicityPrompts' prompts.jsonl",
            ) from exc
        label = "challenging" if row.get("challenging") else "not_challenging"
        records.append((f"rtp-{number:06d}", text, label))
    return _make_items("rtp", records)


def resolve_loader(name: str) -> str:
    key = _key(name).replace(",", "_")
    key = ALIASES.get(key, ALIASES.get(name.lower(), key))
    if key not in LOADERS:
        from valueharm.core.registry import unknown_name

        raise unknown_name("benchmark loader", name, sorted(LOADERS))
    return key


def sample(
    items: list[dict[str, Any]], limit: int | None, seed: int = 0, method: str = "stratified"
) -> list[dict[str, Any]]:
    """At most `limit` items: stratified by category (see module doc) or the first `limit`."""
    if limit is None:
        return list(items)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UserError(f"benchmark limit must be a positive integer or null, got {limit!r}", "fix params.yaml")
    if method not in ("stratified", "first"):
        raise UserError(f"unknown sampling method {method!r}", "valid: stratified, first")
    if limit >= len(items):
        return list(items)
    if method == "first":
        return list(items[:limit])
    rng = random.Random(seed)
    by_category: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_category.setdefault(item["category"], []).append(index)
    queues = []
    for category in sorted(by_category):
        order = list(by_category[category])
        rng.shuffle(order)
        queues.append(order)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit:
        for queue in queues:
            if depth < len(queue) and len(chosen) < limit:
                chosen.append(queue[depth])
        depth += 1
    return [items[i] for i in sorted(chosen)]


def load_benchmark(
    loader: str,
    path: str | Path,
    *,
    name: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    sampling: str = "stratified",
    strict: bool = False,
    splits: Iterable[str] | None = None,
) -> Benchmark:
    """Load one benchmark file (or HarmBench folder), map its categories, and sample it.

    strict=True turns a label missing from the crosswalk into a UserError; by default such items
    are kept as UNMAPPED and listed under `unknown` in `Benchmark.report()`.
    """
    key = resolve_loader(loader)
    path = Path(path)
    if key == "harmbench" and splits is not None:
        splits = tuple(splits)
        bad = [s for s in splits if s not in ("test", "val")]
        if bad or not splits:
            raise UserError(f"harmbench splits must be test and/or val, got {list(splits)}", "fix params.yaml")
        items = _load_harmbench(path, splits)
    else:
        items = LOADERS[key](path)
    label = name or key
    _check(items, label, path)
    bench = Benchmark(label, sample(items, limit, seed, sampling), path=str(path), n_available=len(items))
    unknown = bench.report()["unknown"]
    if unknown:
        listed = ", ".join(f"{k!r} ({v})" for k, v in unknown.items())
        if strict:
            raise UserError(
                f"benchmark {label}: categories not in the {key} crosswalk: {listed}",
                "add them to valueharm.data.benchmarks.CROSSWALKS or set strict: false to keep them as unmapped",
            )
        bench.notes.append(f"categories not in the {key} crosswalk, kept as unmapped: {listed}")
    return bench


def load_from_config(name: str, cfg: dict[str, Any], seed: int = 0) -> Benchmark:
    """Load a benchmark from its params section: {loader, path, limit?, sampling?, strict?, splits?}."""
    if not isinstance(cfg, dict) or "path" not in cfg:
        raise UserError(
            f"params `benchmarks.{name}` needs at least `path`",
            "e.g. {loader: valueharm, path: data/benchmarks/harm_benchmark.jsonl}",
        )
    return load_benchmark(
        cfg.get("loader", name),
        cfg["path"],
        name=name,
        limit=cfg.get("limit"),
        seed=int(cfg.get("seed", seed)),
        sampling=cfg.get("sampling", "stratified"),
        strict=bool(cfg.get("strict", False)),
        splits=cfg.get("splits"),
    )
