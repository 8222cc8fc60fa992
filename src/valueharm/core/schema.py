"""Typed, strict params: one dataclass per params.yaml section, the only place defaults live.

`validate_params(raw)` checks a params mapping against these classes before any heavy work:
an unknown key, a wrong type or an out-of-range value fails with one line naming the key and
what is allowed (with the closest valid key for a typo). It returns the params with every
default filled in, which is what `load_params()` gives the stages.

The defaults are the embedded default (CPU, 2 cores). `configs/<preset>.yaml` files are overlays
that list only what differs; `valueharm preset NAME` merges one onto these defaults and writes
params.yaml. Overlay mappings merge key by key, except `benchmarks` and `generate.sampling`,
which an overlay replaces whole (a preset names its own benchmarks).

Adding a param: add a field here (with `rule(...)` for its range or choices), use it in the
stage, and run `valueharm preset default` to refresh params.yaml.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from valueharm.core.errors import UserError
from valueharm.core.registry import closest

REPLACED_WHOLE = ("benchmarks", "generate.sampling")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def rule(default: Any = dataclasses.MISSING, *, factory: Any = None, **checks: Any) -> Any:
    """A field with range checks: ge, gt, le, lt, `nonempty=True` for lists, `pattern=` (full match) for text."""
    if factory is not None:
        return field(default_factory=factory, metadata=checks)
    return field(default=default, metadata=checks)


# ---- shared pieces ----------------------------------------------------------------------------


@dataclass
class Sampling:
    temperature: float = rule(0.0, ge=0.0, le=5.0)
    top_p: float = rule(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = rule(32, ge=1, le=8192)


@dataclass
class Lora:
    r: int = rule(8, ge=1, le=1024)
    alpha: int = rule(32, ge=1)
    dropout: float = rule(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = rule(factory=lambda: ["q_proj", "v_proj"], nonempty=True)
    # adapt only the last N decoder layers (null: all); backpropagation stops at the lowest one
    top_layers: int | None = rule(None, ge=1)


@dataclass
class Optimiser:
    lr: float = rule(2.0e-3, gt=0.0, le=1.0)
    epochs: int = rule(1, ge=1)
    batch_size: int = rule(4, ge=1)
    grad_accum: int = rule(1, ge=1)
    max_steps: int = rule(-1, ge=-1)  # -1: no cap
    max_length: int = rule(128, ge=8)
    warmup_ratio: float = rule(0.0, ge=0.0, le=1.0)
    schedule: Literal["linear", "constant"] = "linear"
    # padded: every row padded to the longest (bit-exact with earlier runs); packed: the same examples
    # per step in as few rows as fit max_length (same loss up to rounding, no compute on padding);
    # bucketed: steps of similar-length examples (other batches, least padding); shared_prefix: the
    # prompt prefix a step's rows share runs once and its keys/values serve every row (same batches,
    # same loss up to rounding). `valueharm bench` reports useful tokens/s for each.
    batching: Literal["padded", "packed", "bucketed", "shared_prefix"] = "padded"


# ---- sections -----------------------------------------------------------------------------------


@dataclass
class Model:
    name: str = "smollm2-135m-instruct"  # or an HF id (with revision) / a local safetensors folder
    # a hub commit (40 hex digits) so that the weights cannot change under a cached run; null for the
    # embedded model or a local folder (a branch name such as `main` is not reproducible)
    revision: str | None = rule(None, pattern=r"[0-9a-f]{40}", describe="a 40-hex commit hash or null")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


@dataclass
class SafetyEval:
    limit: int = rule(24, ge=2)
    batch_size: int = rule(24, ge=1)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class SafetyTune:
    enabled: bool = True
    pairs: str = "data/corpora/safety_pairs.jsonl"
    valid_fraction: float = rule(0.1, gt=0.0, lt=1.0)
    valid_limit: int | None = rule(16, ge=2)
    lora: Lora = field(
        default_factory=lambda: Lora(
            r=16, alpha=32, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]
        )
    )
    train: Optimiser = field(
        default_factory=lambda: Optimiser(lr=2.0e-3, batch_size=4, max_steps=24, max_length=96, warmup_ratio=0.1)
    )
    eval: SafetyEval = field(default_factory=SafetyEval)


@dataclass
class Profiles:
    survey: str = "data/survey/synthetic_ess_items.csv"
    format: Literal["items", "scores"] = "items"
    orientation: Literal["raw", "reversed"] = "reversed"
    centre: bool = False
    nearest: int = rule(10, ge=0, le=1000)
    anchors: str | list[str] = "all"  # all | values | groups | [names]
    ranks: str | list[int] = "all"  # all | [0, 1, ...]
    ties: Literal["file", "release"] = "file"  # release: the released selection's order (docs/paper.md, "Ties")


@dataclass
class Study:
    models: list[str] = rule(
        factory=lambda: ["vanilla", "hedonism", "power", "icl-hedonism", "control-shuffled"], nonempty=True
    )
    control_profile: str | None = "hedonism"
    # one adapter per seed (replicates; the first is the one generation and judging use); every
    # random choice of an adapter derives from (seed, model name). Distinct integers.
    seeds: list[int] = rule(factory=lambda: [42], nonempty=True)


@dataclass
class ArgumentGeneration:
    strategy: Literal["min", "mean", "max"] = "min"
    threshold: float = rule(3, ge=1, le=6)


@dataclass
class Train:
    corpus: str = "data/corpora/value_arguments.tsv"
    benign: str = "data/corpora/benign_instructions.jsonl"
    valid_fraction: float = rule(0.1, gt=0.0, lt=1.0)
    valid_limit: int | None = rule(8, ge=1)
    ag: ArgumentGeneration = field(default_factory=ArgumentGeneration)
    lora: Lora = field(default_factory=lambda: Lora(r=8, alpha=32, dropout=0.1, top_layers=12))
    stage1: Optimiser = field(default_factory=lambda: Optimiser(lr=2.0e-3, max_steps=6))
    # stage 2 at 60 steps of 8: the smallest measured budget at which the default's value adapters pass
    # the manipulation check (README, "The value manipulation"); 4 steps of 4 never did.
    # max_length 192 tokens: the default's QA prompts (chat template, instruction, statement, question) are 150-180
    # tokens; at 128 every one lost its first ~40 (the template's start and the instruction), which the
    # questionnaire then shows in full. The study used 128 (docs/paper.md); the paper preset keeps it.
    stage2: Optimiser = field(
        default_factory=lambda: Optimiser(
            lr=2.0e-3, batch_size=8, max_steps=60, max_length=192, batching="shared_prefix"
        )
    )
    # stage-2 high (4..6) and low (1..3) answers 50/50 (a deviation from the study: an extreme
    # profile's targets are 9 in 10 "1"); none: as the study
    qa_balance: Literal["balanced", "none"] = "balanced"
    # the authors' split files instead of the seeded split: {train: PATH, valid: PATH}
    split_files: dict[str, str] | None = None


@dataclass
class AlignCheck:
    questionnaire: str = "data/corpora/questionnaire.yaml"
    items_per_value: int | None = rule(2, ge=1)
    batch_size: int = rule(64, ge=1)
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.0, top_p=1.0, max_new_tokens=6))
    generate: bool = True  # the secondary view: generation + parsing (likelihood scoring is primary)


@dataclass
class Manipulation:
    min_shift: float = rule(0.5, gt=0.0, le=5.0)  # scale points
    alpha: float = rule(0.05, gt=0.0, lt=1.0)
    permutations: int = rule(10000, ge=100)
    variant: Literal["raw", "norm"] = "raw"  # lm-eval's acc (raw) or acc_norm (per character)


@dataclass
class Benchmark:
    loader: str = "valueharm"
    path: str = "data/benchmarks/harm_benchmark.jsonl"
    limit: int | None = rule(None, ge=1)
    splits: list[str] | None = None
    strict: bool = False


@dataclass
class OpenAIServer:
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str | None = None  # the name of an env var; the key itself is never written anywhere
    model_template: str = "{model}"
    concurrency: int = rule(4, ge=1, le=256)
    timeout: float = rule(60, gt=0)
    retries: int = rule(3, ge=0, le=20)
    backoff: float = rule(1.0, ge=0)
    # `valueharm serve`: LoRA adapters vLLM holds on the GPU at once (--max-loras = min(this, adapters))
    max_loras: int = rule(8, ge=1, le=256)


def _default_sampling() -> dict[str, Sampling]:
    return {"default": Sampling(temperature=0.1, top_p=0.75, max_new_tokens=32)}


@dataclass
class Generate:
    backend: Literal["hf", "openai"] = "hf"
    batch_size: int = rule(64, ge=1)
    chat_template: bool = True  # false: the study's `QUESTION: ... ANSWER: ` format
    sampling: dict[str, Sampling] = field(default_factory=_default_sampling)  # `default` + per-benchmark
    openai: OpenAIServer = field(default_factory=OpenAIServer)


@dataclass
class JudgeModel:
    # cross_encoder: MiniLM fine-tuned on (request, answer); probe: frozen MiniLM features + logistic heads
    kind: Literal["cross_encoder", "probe"] = "cross_encoder"
    pyrit_dir: str = "data/judge/pyrit_scorer_evals"
    C: float = rule(0.01, gt=0)  # probe: L2 strength of both heads (CV on PyRIT: 0.01 beat 0.003..0.3)
    folds: int = rule(5, ge=2, le=50)  # request-grouped folds; the cross-encoder is tested on the first
    all_folds: bool = False  # cross_encoder: also train and test on every other fold (cv_auc; folds x the cost)
    max_rows: int | None = rule(2000, ge=10)
    max_seq_length: int = rule(256, ge=8, le=512)
    epochs: int = rule(3, ge=1, le=100)  # cross_encoder fine-tuning
    lr: float = rule(5.0e-5, gt=0.0, le=1.0)
    batch_size: int = rule(16, ge=1, le=4096)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 autocast on AMX-BF16 CPUs
    # the labelled set of the project's own answers; its `train` split is used here, `heldout` never
    labels: str | None = "src/valueharm/corpora/judge_labels.jsonl"
    own_weight: float = rule(3.0, ge=0.0)  # weight of a labelled own answer relative to a PyRIT row
    babble: int = rule(60, ge=0)  # authored random-word-piece answers: compliance 1, harmful 0
    max_refusal_rows: int | None = rule(600, ge=10)  # PyRIT refusal rows for the compliance head
    benign: str | None = "data/corpora/benign_instructions.jsonl"  # authored harmless (request, answer) pairs
    n_benign: int = rule(120, ge=0)  # how many of them: harmful 0, compliance 1 (teaches reading the request)


@dataclass
class JudgeValidation:
    refusals: str = "data/corpora/safety_pairs.jsonl"  # authored refusals: the lowest-harm sanity row
    babble: int = rule(40, ge=1)  # random-token babble answers in the sanity rows
    kappa_threshold: float = rule(0.4, ge=0.0, le=1.0)  # below: the loud "unreliable judge" warning
    min_positives: int = rule(10, ge=1)  # fewer harmful held-out answers: kappa on harmful is "not measured"


@dataclass
class Judge:
    name: str = "classifier"
    second: str | None = "refusal"
    bootstrap: int = rule(1000, ge=0)
    cache_dir: str | None = None
    # per-judge option mappings (judge.classifier, judge.rubric, ...), checked against each judge's options
    options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "classifier": {"model_path": "artifacts/judge_model"},
            "rubric": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o", "api_key_env": "OPENAI_API_KEY"},
            "llamaguard": {"model_path": None},
        }
    )


@dataclass
class Analyze:
    methods: list[Literal["pearson", "spearman", "kendall", "partial_pearson", "partial_spearman"]] = rule(
        factory=lambda: ["pearson", "spearman", "kendall", "partial_pearson", "partial_spearman"], nonempty=True
    )
    primary_method: Literal["pearson", "spearman", "kendall", "partial_pearson", "partial_spearman"] = "spearman"
    alpha: float = rule(0.05, gt=0.0, lt=1.0)
    bootstrap: int = rule(1000, ge=0)
    permutations: int = rule(10000, ge=0)
    reference: str = "vanilla"
    hypotheses: str | bool | None = None  # null: the packaged registry; false: none; or a YAML path


@dataclass
class Focus:
    bootstrap: int = rule(1000, ge=0)
    permutations: int = rule(10000, ge=0)


@dataclass
class Mitigate:
    limit: int | None = rule(6, ge=1)
    batch_size: int = rule(64, ge=1)
    bootstrap: int = rule(1000, ge=0)
    permutations: int = rule(10000, ge=0)
    sampling: Sampling = field(default_factory=lambda: Sampling(temperature=0.1, top_p=0.75, max_new_tokens=32))


@dataclass
class Report:
    dpi: int = rule(110, ge=30, le=600)


@dataclass
class Params:
    value: str = "hedonism"  # the experiment's focus: `dvc exp run -S value=power`
    seed: int = rule(42, ge=0)
    model: Model = field(default_factory=Model)
    safety_tune: SafetyTune = field(default_factory=SafetyTune)
    profiles: Profiles = field(default_factory=Profiles)
    study: Study = field(default_factory=Study)
    train: Train = field(default_factory=Train)
    align_check: AlignCheck = field(default_factory=AlignCheck)
    manipulation: Manipulation = field(default_factory=Manipulation)
    benchmarks: dict[str, Benchmark] = field(
        default_factory=lambda: {
            "default": Benchmark(loader="valueharm", path="data/benchmarks/harm_benchmark.jsonl", limit=33),
            "harmbench": Benchmark(
                loader="harmbench", path="data/benchmarks/harmbench", limit=6, splits=["test", "val"]
            ),
        }
    )
    generate: Generate = field(default_factory=Generate)
    judge_model: JudgeModel = field(default_factory=JudgeModel)
    judge: Judge = field(default_factory=Judge)
    judge_validation: JudgeValidation = field(default_factory=JudgeValidation)
    analyze: Analyze = field(default_factory=Analyze)
    focus: Focus = field(default_factory=Focus)
    mitigate: Mitigate = field(default_factory=Mitigate)
    report: Report = field(default_factory=Report)


# ---- checking -----------------------------------------------------------------------------------

FLATTENED = {"judge": "options"}  # sections whose extra keys are entries of a mapping field


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "text", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _fail(where: str, value: Any, allowed: str) -> UserError:
    return UserError(f"params `{where}` is {value!r}, which is not allowed", f"use {allowed} in params.yaml")


def _coerce(tp: Any, value: Any, where: str, default: Any = None) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where, default)
            except UserError as exc:
                errors.append(exc)
        raise _fail(where, value, _describe(tp))
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = [str(a) for a in typing.get_args(tp)]
            guess = closest(str(value), choices)
            hint = f"did you mean {guess}? " if guess else ""
            raise UserError(
                f"params `{where}` is {value!r}, which is not allowed", f"{hint}use one of: {', '.join(choices)}"
            )
        return value
    if origin is list:
        if not isinstance(value, list):
            raise _fail(where, value, _describe(tp))
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, value, "a mapping")
        _, item = typing.get_args(tp)
        return {
            str(k): _coerce(item, v, f"{where}.{k}", default.get(k) if isinstance(default, dict) else None)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _check_section(tp, value, where, default)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, value, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, value, "an integer")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-3` (no dot) as text; accept what is a number
            try:
                value = float(value)
            except ValueError:
                raise _fail(where, value, "a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, value, "a number")
        return value
    if tp is str:
        if not isinstance(value, str) or not value:
            raise _fail(where, value, "non-empty text")
        return value
    raise TypeError(f"schema type {tp!r} at {where} is not supported")  # a bug in this file


def _check_range(f: dataclasses.Field, value: Any, where: str) -> None:
    checks = f.metadata
    if value is None:
        return
    if "pattern" in checks and isinstance(value, str) and not re.fullmatch(checks["pattern"], value):
        allowed = checks.get("describe", f"text matching {checks['pattern']}")
        raise UserError(f"params `{where}` is {value!r}, which is not allowed", f"use {allowed} in params.yaml")
    if checks.get("nonempty") and isinstance(value, list) and not value:
        raise UserError(f"params `{where}` is empty", "list at least one entry in params.yaml")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    bounds = [
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ]
    allowed = " and ".join(f"{sign} {checks[k]}" for k, _, sign in bounds if k in checks)
    for key, ok, _ in bounds:
        if key in checks and not ok(value, checks[key]):
            raise UserError(f"params `{where}` is {value!r}, out of range", f"use a value {allowed} in params.yaml")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _check_section(cls: type, raw: Any, where: str, default: Any = None) -> Any:
    """A dataclass from a mapping; missing keys come from `default` (the parent's default for this
    field, e.g. train.lora's top_layers 12), else from the class."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"params `{where}` must be a mapping, got {raw!r}", f"give `{where}` as keys and values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    flattened = FLATTENED.get(where)
    extra = {k: v for k, v in raw.items() if k not in fields}
    if flattened:
        extra_ok = {k: v for k, v in extra.items() if isinstance(v, dict)}
        raw = {**{k: v for k, v in raw.items() if k in fields}, flattened: extra_ok}
        extra = {k: v for k, v in extra.items() if k not in extra_ok}
    for key in extra:
        guess = closest(str(key), list(fields))
        hint = f"did you mean `{_join(where, guess)}`? " if guess else ""
        raise UserError(
            f"params `{_join(where, key)}` is not a known param",
            f"{hint}valid keys{f' of `{where}`' if where else ''}: "
            + ", ".join(sorted(k for k in fields if k != flattened)),
        )
    values = {}
    default = default if isinstance(default, cls) else cls()
    for name, f in fields.items():
        key = _join(where, name)
        if name in raw:
            value = raw[name]
            if name == flattened:
                value = {**getattr(default, name), **value}
            coerced = _coerce(hints[name], value, key, getattr(default, name))
            _check_range(f, coerced, key)
            values[name] = coerced
        else:
            values[name] = getattr(default, name)
    return cls(**values)


def validate_params(raw: dict[str, Any]) -> Params:
    """Params with defaults filled in; the first problem raises one `UserError` line."""
    if not isinstance(raw, dict):
        raise UserError("params.yaml must be a mapping of sections", "rerun `valueharm preset default`")
    return _check_section(Params, raw, "")


def to_dict(params: Params) -> dict[str, Any]:
    """The params as plain data, in params.yaml's shape (judge options back under `judge.<name>`)."""
    data = dataclasses.asdict(params)
    judge = data["judge"]
    options = judge.pop("options")
    judge.update(options)
    return data


def defaults() -> dict[str, Any]:
    return to_dict(Params())


def merge(base: dict[str, Any], overlay: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Overlay onto base: mappings merge key by key, except REPLACED_WHOLE paths and non-mappings."""
    out = dict(base)
    for key, value in (overlay or {}).items():
        path = f"{where}.{key}" if where else key
        if isinstance(value, dict) and isinstance(out.get(key), dict) and path not in REPLACED_WHOLE:
            out[key] = merge(out[key], value, path)
        else:
            out[key] = value
    return out
