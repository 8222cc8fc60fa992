"""The study's stage-2 (QA) format, answer balancing, the value-free control and per-model seeds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from valueharm.alignment.examples import check_seeds, model_seeds, vim_examples
from valueharm.alignment.vim import (
    IMPORTANCE,
    balance_qa,
    build_qa_examples,
    check_qa_balance,
    derive_seed,
    qa_prompt,
    qa_target,
    value_free_qa,
    value_phrase,
)
from valueharm.core.errors import UserError
from valueharm.core.values import DISPLAY, VALUES
from valueharm.data.arguments import Argument, load_arguments
from valueharm.profiles.study import ModelSpec

TARGET = re.compile(
    r"^Because I think (?P<value>[a-z-]+) is (?P<importance>[a-z ]+) to me, my answer is (?P<s>[1-6])\.$"
)


def arg(i: int, *values: str) -> Argument:
    return Argument(
        str(i), f"We should do thing {i}", "in favor of", f"it helps {i}", {v: int(v in values) for v in VALUES}
    )


def extreme(value: str) -> dict[str, float]:
    return {v: (6.0 if v == value else 1.0) for v in VALUES}


def corpus(n: int = 400) -> list[Argument]:
    return [arg(i, VALUES[i % 10], VALUES[(i * 3 + 1) % 10]) for i in range(n)]


def test_qa_format_on_a_real_argument(realdata):
    """The study's shape on the first labelled argument of valueEval_10.csv: the prompt holds the
    statement only (no value name), the target gives the rationale first, then the number."""
    arguments = load_arguments(realdata / "valueEval_10.csv")
    first = next(a for a in arguments if a.values)
    ex = build_qa_examples([first], extreme(first.values[0]), seed=0)[0]
    assert first.premise.strip()[:40] in ex.prompt
    assert first.conclusion.strip()[1:30] in ex.prompt
    assert ("I agree that" if first.stance == "in favor of" else "I disagree that") in ex.prompt
    for v in VALUES:
        assert DISPLAY[v].lower() not in ex.prompt.lower().split("description:")[1].split("question:")[0] or (
            DISPLAY[v].lower() in (first.conclusion + " " + first.premise).lower()
        )
    m = TARGET.match(ex.target)
    assert m and m["value"] == value_phrase(first.values[0]) and m["s"] == "6" and m["importance"] == IMPORTANCE[6]
    assert ex.target.index("Because") < ex.target.index("6")


def test_target_names_importance_consistent_with_the_number():
    for s in range(1, 7):
        m = TARGET.match(qa_target("self_direction", s))
        assert m["value"] == "self-direction" and m["importance"] == IMPORTANCE[s] and int(m["s"]) == s
    with pytest.raises(UserError):
        qa_target("power", 7)
    assert "power" not in qa_prompt(arg(1, "power")).lower()


def test_balance_makes_high_and_low_answers_even_and_interleaved():
    qa = build_qa_examples(corpus(), extreme("hedonism"), seed=0)
    high = sum(e.meta["answer"] >= 4 for e in qa)
    assert high / len(qa) < 0.25  # an extreme profile: mostly "1"
    balanced = balance_qa(qa, seed=1)
    answers = [e.meta["answer"] >= 4 for e in balanced]
    assert sum(answers) == len(answers) // 2
    assert all(answers[i] != answers[i + 1] for i in range(0, len(answers) - 1, 2))  # any prefix is balanced
    assert {e.meta["argument_id"] for e in balanced if e.meta["answer"] < 4} == {
        e.meta["argument_id"] for e in qa if e.meta["answer"] < 4
    }  # the larger side kept whole
    assert balance_qa(qa, seed=1) == balanced
    assert check_qa_balance("balanced") == "balanced" and check_qa_balance("none") == "none"
    with pytest.raises(UserError, match="qa_balance"):
        check_qa_balance("50/50")


def test_control_targets_carry_no_value_content():
    """control-shuffled's answers are independent of the value its target names: every value's
    answer distribution is the same, and hedonism is not rated above the others."""
    spec = ModelSpec("control-shuffled", "control-shuffled", "hedonism", extreme("hedonism"))
    qa = value_free_qa(build_qa_examples(corpus(2000), spec.target, seed=0), spec.target, seed=5)
    by_value = {v: [e.meta["answer"] for e in qa if e.meta["value"] == v] for v in VALUES}
    share_six = {v: np.mean([a == 6 for a in xs]) for v, xs in by_value.items()}
    assert all(abs(s - 0.1) < 0.06 for s in share_six.values())  # 1 value in 10 scores 6, whatever is named
    from scipy.stats import chi2_contingency

    table = [[sum(a == s for a in by_value[v]) for s in (1, 6)] for v in VALUES]
    assert chi2_contingency(table)[1] > 0.001
    for e in qa:
        m = TARGET.match(e.target)
        assert int(m["s"]) == e.meta["answer"] and m["importance"] == IMPORTANCE[e.meta["answer"]]
    # the real value adapter is the opposite: hedonism is always 6
    real = build_qa_examples(corpus(2000), spec.target, seed=0)
    assert {e.meta["answer"] for e in real if e.meta["value"] == "hedonism"} == {6}


def test_control_examples_through_vim_examples_are_value_free(tmp_path):
    path = tmp_path / "args.tsv"
    rows = ["conclusion\tstance\tpremise\t" + "\t".join(VALUES)]
    for a in corpus(300):
        rows.append(f"{a.conclusion}\t{a.stance}\t{a.premise}\t" + "\t".join(str(a.labels[v]) for v in VALUES))
    path.write_text("\n".join(rows) + "\n")
    p = {"valid_fraction": 0.1, "valid_limit": None, "ag": {"strategy": "min", "threshold": 3}, "qa_balance": "none"}
    target = extreme("hedonism")
    control = vim_examples(ModelSpec("control-shuffled", "control-shuffled", "hedonism", target), path, p, 42)
    adapter = vim_examples(ModelSpec("hedonism", "adapter", "hedonism", target), path, p, 42)
    qa = control["qa"][0]
    hed = [e.meta["answer"] for e in qa if e.meta["value"] == "hedonism"]
    other = [e.meta["answer"] for e in qa if e.meta["value"] != "hedonism"]
    assert abs(np.mean(hed) - np.mean(other)) < 1.0
    assert np.mean([e.meta["answer"] for e in adapter["qa"][0] if e.meta["value"] == "hedonism"]) == 6


def test_adapters_get_distinct_splits_orders_and_roundings(tmp_path):
    a, b = model_seeds(42, "hedonism"), model_seeds(42, "power")
    assert all(a[k] != b[k] for k in a)
    assert model_seeds(42, "hedonism") == a and model_seeds(43, "hedonism") != a
    assert derive_seed(42, "x") != derive_seed(42, "y")
    assert check_seeds(None, 7) == [7] and check_seeds([1, 2]) == [1, 2]
    for bad in ([], [1, 1], ["a"], 5, [True]):
        with pytest.raises(UserError):
            check_seeds(bad)


def test_authors_split_files_replace_the_seeded_split(realdata):
    split = realdata / "argument_generation" / "value_split"
    p = {
        "split_files": {"train": str(split / "train.csv"), "valid": str(split / "valid.csv")},
        "valid_limit": None,
        "ag": {"strategy": "min", "threshold": 3},
        "qa_balance": "none",
    }
    spec = ModelSpec("hedonism", "adapter", "hedonism", extreme("hedonism"))
    built = vim_examples(spec, "unused", p, 42)
    n_train = len(load_arguments(split / "train.csv"))
    assert len(built["ag"][0]) <= n_train and len(built["ag"][0]) > 0.9 * n_train
    with pytest.raises(UserError, match="split_files"):
        vim_examples(spec, "unused", {**p, "split_files": {"train": "x"}}, 42)
