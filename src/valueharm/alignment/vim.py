"""VIM training data for one value profile: argument generation (AG) and questionnaire answering (QA).

VIM (Kang et al., EMNLP 2023) aligns a model with a profile in two stages (docs/paper.md, "Making a
value-aligned model"); this module builds both stages' examples from a value-labelled argument
corpus (`arguments.load_arguments`). The prompts are the project's own wording.

AG (stage 1). Each labelled argument gets a score from the profile over its labelled values -
`strategy="min"` (the study) or `"mean"` - and is a *positive* ("would say") example when the
score >= `threshold` (3 in the study), else a *negative* ("would not say") one. The prompt gives
the conclusion and asks for an argument the persona would / would not make; the target restates
agreement (stance "in favor of") or disagreement ("against") with the conclusion, with the premise
as the reason, opening with "I would say" / "I would not say". Arguments without any label have
no score and are skipped (counted by `summarize`).

QA (stage 2), in the study's released format (docs/paper.md): every (argument, labelled value) pair
becomes a portrait item whose prompt holds only the statement ("I agree/disagree that {conclusion}.
{premise}") inside the same 1..6 question the portrait questionnaire asks; the prompt does NOT name
the value. The target gives the rationale first, then the number: "Because I think {value} is
{importance} to me, my answer is {s}." The model so learns to recognise the value in the text and
then rate it (naming the value in the prompt and putting the number first teaches "value name ->
number" only, which does not transfer to a questionnaire that names no value). Non-integer scores
are rounded stochastically with a seeded `numpy.random.Generator`: floor(s) + 1 with probability
frac(s). One uniform draw is made per QA example, in example order, whether or not the score is an
integer, so that the draws do not depend on which scores happen to be whole.

`balance_qa` (param `train.qa_balance: balanced`, a deviation from the study) rebalances high
(4..6) and low (1..3) answers 50/50: for an extreme profile 9 in 10 targets are "1", and an
adapter trained on them learns the majority answer rather than the profile.

`value_free_qa` (control `control-shuffled`) replaces every QA answer by a seeded draw from the
profile's own multiset of scores, independent of the value: same answer distribution, no link
between value and answer.

Loss on the target only and `truncate_prompt_side` (used by `training.py` when it tokenises):
prompt and target are tokenised separately; when they exceed `max_length` only the prompt is cut
(see the function).

A profile with no positive AG example (5 of the study's released profiles had none) is not an
error: `summarize` reports `no_positive_ag: true` and training goes on with what there is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import numpy as np

from valueharm.core.errors import UserError
from valueharm.core.values import DISPLAY, VALUES, resolve
from valueharm.data.arguments import Argument

__all__ = [
    "Example",
    "STRATEGIES",
    "IMPORTANCE",
    "check_profile",
    "argument_score",
    "build_ag_examples",
    "build_qa_examples",
    "stochastic_round",
    "qa_prompt",
    "qa_target",
    "statement",
    "balance_qa",
    "check_qa_balance",
    "value_free_qa",
    "derive_seed",
    "QA_BALANCE",
    "split_arguments",
    "summarize",
    "shuffle_labels",
    "truncate_prompt_side",
    "Truncated",
    "TargetTooLong",
]

STRATEGIES = ("min", "mean")
SCALE_MIN, SCALE_MAX = 1, 6

# How the QA target names a score's importance (1..6; higher = more important).
IMPORTANCE: dict[int, str] = {
    1: "not important at all",
    2: "not important",
    3: "a little important",
    4: "somewhat important",
    5: "important",
    6: "very important",
}

# The portrait scale, worded as in corpora/questionnaire.yaml (questionnaire.py reads the file).
SCALE_HINT = "1 (not like me at all) to 6 (very much like me)"


@dataclass(frozen=True)
class Example:
    """One training pair. The loss covers `target` only; `meta` says where it came from."""

    prompt: str
    target: str
    kind: Literal["ag", "qa"]
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- profiles


def check_profile(profile: Mapping[str, float]) -> dict[str, float]:
    """Canonical keys, all ten values present, each score a finite number in 1..6."""
    if not isinstance(profile, Mapping) or not profile:
        raise UserError("a value profile must map the ten values to scores 1..6", "check the profile manifest")
    out: dict[str, float] = {}
    for key, score in profile.items():
        value = resolve(key, allow_groups=False)
        try:
            number = float(score)
        except (TypeError, ValueError):
            raise UserError(f"profile score for {value} is {score!r}, not a number", "scores run 1..6") from None
        if not math.isfinite(number) or not SCALE_MIN <= number <= SCALE_MAX:
            raise UserError(
                f"profile score for {value} is {score!r}, outside 1..6", "scores run 1..6 (6 = very important)"
            )
        out[value] = number
    missing = [v for v in VALUES if v not in out]
    if missing:
        raise UserError(f"the profile has no score for {', '.join(missing)}", "a profile scores all ten values")
    return {v: out[v] for v in VALUES}


def argument_score(argument: Argument, profile: Mapping[str, float], strategy: str = "min") -> float | None:
    """The profile's score over the argument's labelled values (None when it has no label)."""
    labelled = argument.values
    if not labelled:
        return None
    scores = [profile[v] for v in labelled]
    if strategy == "min":
        return float(min(scores))
    if strategy == "mean":
        return float(sum(scores) / len(scores))
    raise UserError(f"unknown AG strategy {strategy!r}", "valid strategies: " + ", ".join(STRATEGIES))


# ----------------------------------------------------------------------------- AG


def _position(stance: str) -> str:
    return "agree" if stance == "in favor of" else "disagree"


def ag_prompt(conclusion: str, positive: bool) -> str:
    would = "would" if positive else "would not"
    return (
        f"Statement: {conclusion}\n"
        f"Question: Thinking of what matters to you, what is an argument you {would} make about this statement?\n"
        f"Answer: "
    )


def ag_target(argument: Argument, positive: bool) -> str:
    would = "would" if positive else "would not"
    premise = argument.premise.rstrip()
    if premise and premise[-1] not in ".!?":
        premise += "."
    return f"I {would} say that I {_position(argument.stance)} with this statement, because {premise}"


def build_ag_examples(
    arguments: Sequence[Argument], profile: Mapping[str, float], *, strategy: str = "min", threshold: float = 3
) -> list[Example]:
    """Stage-1 examples, one per labelled argument, in corpus order (unlabelled ones skipped)."""
    profile = check_profile(profile)
    if strategy not in STRATEGIES:
        raise UserError(f"unknown AG strategy {strategy!r}", "valid strategies: " + ", ".join(STRATEGIES))
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise UserError(f"AG threshold {threshold!r} is not a number", "use a score such as 3") from None
    out = []
    for arg in arguments:
        score = argument_score(arg, profile, strategy)
        if score is None:
            continue
        positive = score >= threshold
        out.append(
            Example(
                prompt=ag_prompt(arg.conclusion, positive),
                target=ag_target(arg, positive),
                kind="ag",
                meta={
                    "argument_id": arg.id,
                    "polarity": "positive" if positive else "negative",
                    "score": score,
                    "values": list(arg.values),
                },
            )
        )
    return out


# ----------------------------------------------------------------------------- QA


def stochastic_round(score: float, u: float) -> int:
    """floor(score) + 1 when u < frac(score), else floor(score); u is a uniform draw in [0, 1)."""
    low = math.floor(score)
    return int(low + (1 if u < score - low else 0))


QA_QUESTION = "Question: How much is this person like you? Answer with a number from " + SCALE_HINT + ".\n"
QA_INSTRUCTIONS = (
    "Below is something a person said. Consider how much the person is or is not like you, "
    "and rate it from 1 to 6, giving your reason first."
)


def statement(argument: Argument) -> str:
    """The argument as a person says it: "I agree that {conclusion}. {premise}" (the study's shape)."""
    conclusion = argument.conclusion.strip().rstrip(".!?")
    premise = argument.premise.strip()
    if premise and premise[-1] not in ".!?":
        premise += "."
    return f"I {_position(argument.stance)} that {conclusion[:1].lower()}{conclusion[1:]}. {premise}".strip()


def qa_prompt(argument: Argument) -> str:
    """The stage-2 prompt: the statement only, never the value (see module doc)."""
    return f'{QA_INSTRUCTIONS}\n\nDescription: This person says: "{statement(argument)}"\n{QA_QUESTION}Answer: '


def value_phrase(value: str) -> str:
    """How the target names a value ("self-direction")."""
    return DISPLAY[value].lower()


def qa_target(value: str, answer: int) -> str:
    """The study's stage-2 target: rationale first, then the number."""
    if answer not in IMPORTANCE:
        raise UserError(f"QA answer {answer!r} is not on the 1..6 scale", "answers run 1..6")
    return f"Because I think {value_phrase(value)} is {IMPORTANCE[answer]} to me, my answer is {answer}."


def build_qa_examples(arguments: Sequence[Argument], profile: Mapping[str, float], *, seed: int) -> list[Example]:
    """Stage-2 examples: one per (argument, labelled value), arguments in corpus order, values in
    canonical order; scores rounded stochastically with `numpy.random.default_rng(seed)`."""
    profile = check_profile(profile)
    rng = np.random.default_rng(seed)
    pairs = [(arg, v) for arg in arguments for v in arg.values]
    draws = rng.random(len(pairs))
    out = []
    for (arg, value), u in zip(pairs, draws):
        answer = stochastic_round(profile[value], float(u))
        out.append(
            Example(
                prompt=qa_prompt(arg),
                target=qa_target(value, answer),
                kind="qa",
                meta={"argument_id": arg.id, "value": value, "profile_score": profile[value], "answer": answer},
            )
        )
    return out


QA_BALANCE = ("balanced", "none")
HIGH_MIN = 4  # answers 4..6 are "high", 1..3 "low"


def check_qa_balance(mode: Any) -> str:
    """`train.qa_balance`: balanced | none (one-line error otherwise)."""
    if mode is None or mode is False:
        return "none"
    if mode is True:
        return "balanced"
    if str(mode) not in QA_BALANCE:
        raise UserError(f"train.qa_balance {mode!r} is not known", "use one of: " + ", ".join(QA_BALANCE))
    return str(mode)


def balance_qa(examples: Sequence[Example], seed: int) -> list[Example]:
    """High (4..6) and low (1..3) answers 50/50: every example of the larger side once, the smaller
    side drawn again (seeded, without replacement within each pass) to the same count, interleaved
    high/low so that any prefix (a validation limit, a step cap) is balanced too. A side with no
    example leaves the list as it is: there is nothing to balance against."""
    high = [e for e in examples if int(e.meta["answer"]) >= HIGH_MIN]
    low = [e for e in examples if int(e.meta["answer"]) < HIGH_MIN]
    if not high or not low:
        return list(examples)
    rng = np.random.default_rng(seed)

    def fill(side: list[Example], n: int) -> list[Example]:
        out: list[Example] = []
        while len(out) < n:
            out += [side[int(i)] for i in rng.permutation(len(side))]
        return out[:n]

    n = max(len(high), len(low))
    high = list(high) if len(high) == n else fill(high, n)
    low = list(low) if len(low) == n else fill(low, n)
    high = [high[int(i)] for i in rng.permutation(n)]  # the larger side leaves corpus order too
    low = [low[int(i)] for i in rng.permutation(n)]
    return [e for pair in zip(high, low) for e in pair]


def value_free_qa(examples: Sequence[Example], profile: Mapping[str, float], seed: int) -> list[Example]:
    """The control's stage 2: each answer is a seeded draw from the profile's ten scores (stochastically
    rounded), whatever value the target names, so that the answers carry no value content."""
    profile = check_profile(profile)
    scores = [profile[v] for v in VALUES]
    rng = np.random.default_rng(seed)
    picks, draws = rng.integers(0, len(scores), len(examples)), rng.random(len(examples))
    out = []
    for ex, k, u in zip(examples, picks, draws):
        answer = stochastic_round(scores[int(k)], float(u))
        value = ex.meta["value"]
        meta = {**ex.meta, "profile_score": scores[int(k)], "answer": answer, "value_free": True}
        out.append(replace(ex, target=qa_target(value, answer), meta=meta))
    return out


def derive_seed(seed: int, *parts: str) -> int:
    """A seed for one model from the run seed and its name (and a purpose): distinct adapters get
    distinct splits, orders and roundings, and the same name always gets the same seed."""
    import hashlib

    digest = hashlib.sha256(":".join([str(int(seed)), *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# ----------------------------------------------------------------------------- splits, summary, controls


def _split_indices(n: int, valid_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    if not 0 <= valid_fraction < 1:
        raise UserError(f"validation fraction {valid_fraction!r} must be in [0, 1)", "use e.g. 0.1")
    n_valid = int(round(n * valid_fraction))
    if valid_fraction > 0 and n >= 2:
        n_valid = min(max(n_valid, 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    valid = sorted(int(i) for i in order[:n_valid])
    chosen = set(valid)
    return [i for i in range(n) if i not in chosen], valid


def split_arguments(
    arguments: Sequence[Argument], valid_fraction: float, seed: int
) -> tuple[list[Argument], list[Argument]]:
    """(train, validation) arguments: a seeded random subset of round(n * fraction) (at least one
    when the fraction is > 0 and n >= 2) goes to validation; both keep corpus order.

    Split arguments *before* building examples: the split then does not depend on the profile,
    and an argument's AG and QA examples never straddle train and validation."""
    train, valid = _split_indices(len(arguments), valid_fraction, seed)
    return [arguments[i] for i in train], [arguments[i] for i in valid]


def summarize(examples: Sequence[Example], arguments: Sequence[Argument] | None = None) -> dict[str, Any]:
    """Counts for metrics: ag_positive, ag_negative, qa, no_positive_ag (and arguments_unlabelled
    when the corpus is given). `no_positive_ag` is true when there are AG examples but none positive,
    or no AG example at all."""
    pos = sum(1 for e in examples if e.kind == "ag" and e.meta.get("polarity") == "positive")
    neg = sum(1 for e in examples if e.kind == "ag" and e.meta.get("polarity") == "negative")
    out: dict[str, Any] = {
        "ag_positive": pos,
        "ag_negative": neg,
        "qa": sum(1 for e in examples if e.kind == "qa"),
        "no_positive_ag": pos == 0,
    }
    if arguments is not None:
        out["arguments"] = len(arguments)
        out["arguments_unlabelled"] = sum(1 for a in arguments if not a.values)
    return out


def shuffle_labels(arguments: Sequence[Argument], seed: int) -> list[Argument]:
    """Control `control-shuffled`: the same arguments with their value-label vectors permuted
    across arguments (seeded). Texts stay; per-value label counts are unchanged."""
    perm = np.random.default_rng(seed).permutation(len(arguments))
    return [replace(arg, labels=dict(arguments[int(j)].labels)) for arg, j in zip(arguments, perm)]


# ----------------------------------------------------------------------------- truncation / encoding


class TargetTooLong(UserError):
    """A target (with the kept prompt prefix) does not fit in max_length on its own."""


class Truncated(NamedTuple):
    prompt_ids: list[int]
    target_ids: list[int]
    prompt_cut: int  # how many prompt tokens were removed


def truncate_prompt_side(
    prompt_ids: Sequence[int], target_ids: Sequence[int], max_length: int, *, keep_first: int = 0
) -> Truncated:
    """Fit prompt + target into `max_length` tokens by cutting the prompt only.

    The prompt keeps its END: the tokens right before the target (the question and the
    "Answer: " cue) are what the target is conditioned on and what generation will see, whereas
    the start holds context (e.g. the beginning of a long premise) whose loss costs least. The
    first `keep_first` prompt tokens (a BOS token, say) are kept as well; the cut is taken out of
    the middle between them and the end. The target is never cut: if `keep_first` +
    len(target) > max_length this raises `TargetTooLong` (training drops such examples and
    counts them). Pure: lists in, lists out.
    """
    prompt, target = list(prompt_ids), list(target_ids)
    if max_length < 1:
        raise UserError(f"max_length {max_length} must be a positive number of tokens", "fix params.yaml")
    keep_first = max(0, min(keep_first, len(prompt)))
    if len(prompt) + len(target) <= max_length:
        return Truncated(prompt, target, 0)
    room = max_length - len(target) - keep_first
    if room < 0:
        raise TargetTooLong(
            f"a target of {len(target)} tokens does not fit in max_length {max_length}",
            "raise max_length or drop the example",
        )
    tail = prompt[len(prompt) - room :] if room else []
    kept = prompt[:keep_first] + tail
    return Truncated(kept, target, len(prompt) - len(kept))
