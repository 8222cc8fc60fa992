"""VIM example builders on hand-made arguments: the AG rule, QA rounding, splits, truncation."""

from __future__ import annotations

import pytest

from valueharm.alignment.vim import (
    IMPORTANCE,
    TargetTooLong,
    build_ag_examples,
    build_qa_examples,
    check_profile,
    shuffle_labels,
    split_arguments,
    stochastic_round,
    summarize,
    truncate_prompt_side,
)
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES
from valueharm.data.arguments import Argument, label_counts


def arg(i: str, *values: str, stance: str = "in favor of", premise: str | None = None) -> Argument:
    return Argument(i, f"Conclusion {i}", stance, premise or f"premise {i}", {v: int(v in values) for v in VALUES})


def profile(**scores: float) -> dict[str, float]:
    out = dict.fromkeys(VALUES, 1.0)
    out.update(scores)
    return out


ARGS = [
    arg("a", "hedonism"),  # min 6 / mean 6
    arg("b", "hedonism", "power", stance="against"),  # min 2 / mean 4
    arg("c", "security"),  # 1
    arg("d"),  # no label: skipped
    arg("e", "power", "stimulation"),  # min 2 / mean 2.5
]
PROFILE = profile(hedonism=6, power=2, stimulation=3)


def polarity(examples):
    return {e.meta["argument_id"]: e.meta["polarity"] for e in examples}


def test_ag_rule_min_and_mean():
    by_min = build_ag_examples(ARGS, PROFILE, strategy="min", threshold=3)
    assert polarity(by_min) == {"a": "positive", "b": "negative", "c": "negative", "e": "negative"}
    by_mean = build_ag_examples(ARGS, PROFILE, strategy="mean", threshold=3)
    assert polarity(by_mean) == {"a": "positive", "b": "positive", "c": "negative", "e": "negative"}
    assert polarity(build_ag_examples(ARGS, PROFILE, strategy="mean", threshold=2.5))["e"] == "positive"
    assert [e.meta["score"] for e in by_mean] == [6.0, 4.0, 1.0, 2.5]


def test_ag_prompt_and_target_wording():
    pos, neg = build_ag_examples(ARGS, PROFILE)[:2]
    assert "would make" in pos.prompt and "would not make" in neg.prompt
    assert "Conclusion a" in pos.prompt and "premise a" not in pos.prompt
    assert pos.target == "I would say that I agree with this statement, because premise a."
    assert neg.target == "I would not say that I disagree with this statement, because premise b."
    assert pos.kind == "ag" and pos.prompt.endswith("Answer: ")


def test_profile_without_positive_ag_is_reported_not_fatal():
    flat = profile()  # every value 1: nothing reaches threshold 3
    examples = build_ag_examples(ARGS, flat) + build_qa_examples(ARGS, flat, seed=0)
    summary = summarize(examples, ARGS)
    assert summary == {
        "ag_positive": 0,
        "ag_negative": 4,
        "qa": 6,
        "no_positive_ag": True,
        "arguments": 5,
        "arguments_unlabelled": 1,
    }
    assert summarize(build_ag_examples(ARGS, PROFILE))["no_positive_ag"] is False


def test_bad_profiles_and_params():
    with pytest.raises(UserError, match="no score for"):
        build_ag_examples(ARGS, {"hedonism": 6})
    with pytest.raises(UserError, match="outside 1..6"):
        check_profile(profile(power=7))
    with pytest.raises(UserError, match="unknown value name"):
        check_profile({**profile(), "fun": 3})
    with pytest.raises(UserError, match="strategy"):
        build_ag_examples(ARGS, PROFILE, strategy="max")
    # keys in other spellings are fine
    assert check_profile({k.replace("_", "-").title(): v for k, v in PROFILE.items()}) == PROFILE


def test_qa_examples_one_per_labelled_value_with_integer_targets():
    qa = build_qa_examples(ARGS, PROFILE, seed=1)
    assert [(e.meta["argument_id"], e.meta["value"]) for e in qa] == [
        ("a", "hedonism"),
        ("b", "hedonism"),
        ("b", "power"),
        ("c", "security"),
        ("e", "power"),
        ("e", "stimulation"),
    ]
    first = qa[0]
    assert first.target == f"Because I think hedonism is {IMPORTANCE[6]} to me, my answer is 6."
    assert "how much is this person like you" in first.prompt.lower()
    assert "hedonism" not in first.prompt.lower()  # the study's format: the prompt never names the value
    assert 'This person says: "I agree that conclusion a. premise a."' in first.prompt
    assert first.prompt.endswith("Answer: ") and first.kind == "qa"


def test_stochastic_rounding_frequency_matches_fraction_and_is_seeded():
    args = [arg(str(i), "power") for i in range(4000)]
    prof = profile(power=3.3)
    answers = [e.meta["answer"] for e in build_qa_examples(args, prof, seed=7)]
    assert set(answers) == {3, 4}
    share = answers.count(4) / len(answers)
    assert abs(share - 0.3) < 0.03  # ~4 standard errors
    assert answers == [e.meta["answer"] for e in build_qa_examples(args, prof, seed=7)]
    assert answers != [e.meta["answer"] for e in build_qa_examples(args, prof, seed=8)]
    # integer scores are never rounded away
    assert {e.meta["answer"] for e in build_qa_examples(args[:50], profile(power=5), seed=7)} == {5}
    assert stochastic_round(2.25, 0.2499) == 3 and stochastic_round(2.25, 0.25) == 2


def test_splits_are_seeded_disjoint_and_keep_order():
    args = [arg(str(i), "power") for i in range(50)]
    train, valid = split_arguments(args, 0.2, seed=42)
    assert len(valid) == 10 and len(train) == 40
    assert {a.id for a in train}.isdisjoint({a.id for a in valid})
    assert [a.id for a in train] == sorted((a.id for a in train), key=int)
    assert split_arguments(args, 0.2, seed=42) == (train, valid)
    assert split_arguments(args, 0.2, seed=43)[1] != valid
    assert len(split_arguments(args[:3], 0.01, seed=0)[1]) == 1  # at least one for validation
    with pytest.raises(UserError):
        split_arguments(args, 1.0, seed=0)


def test_shuffle_labels_permutes_label_vectors_only():
    args = [arg(str(i), *VALUES[: i % 4 + 1]) for i in range(40)]
    shuffled = shuffle_labels(args, seed=3)
    assert [a.premise for a in shuffled] == [a.premise for a in args]
    assert label_counts(shuffled) == label_counts(args)
    assert sorted(tuple(a.values) for a in shuffled) == sorted(tuple(a.values) for a in args)
    assert [a.values for a in shuffled] != [a.values for a in args]
    assert shuffle_labels(args, seed=3) == shuffled


# ----------------------------------------------------------------------------- truncation


def test_truncation_cuts_only_the_prompt_and_keeps_its_end():
    prompt, target = list(range(100, 120)), [1, 2, 3, 4, 5]
    fit = truncate_prompt_side(prompt, target, 12)
    assert fit.target_ids == target and fit.prompt_ids == list(range(113, 120)) and fit.prompt_cut == 13
    fit = truncate_prompt_side(prompt, target, 12, keep_first=1)
    assert fit.prompt_ids == [100] + list(range(114, 120)) and len(fit.prompt_ids) + 5 == 12
    assert truncate_prompt_side(prompt, target, 25) == (prompt, target, 0)
    assert truncate_prompt_side(prompt, target, 5).prompt_ids == []
    with pytest.raises(TargetTooLong, match="does not fit"):
        truncate_prompt_side(prompt, target, 4)
    with pytest.raises(TargetTooLong):
        truncate_prompt_side(prompt, target, 5, keep_first=1)
