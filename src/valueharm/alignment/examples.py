"""Building the training pairs of every trained model of the study (VIM, controls).

`vim.py` builds examples from arguments; this module chooses which examples a model gets:
its profile's AG then QA examples, the same with labels shuffled for `control-shuffled`, or the
benign instruction pairs for `control-benign`; split into train/validation the same way for all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valueharm.alignment.vim import (
    Example,
    build_ag_examples,
    build_qa_examples,
    shuffle_labels,
    split_arguments,
    summarize,
)
from valueharm.core.atomic import read_jsonl
from valueharm.core.errors import UserError
from valueharm.data.arguments import load_arguments
from valueharm.profiles.study import ModelSpec


def vim_examples(spec: ModelSpec, corpus: str | Path, p: dict[str, Any], seed: int) -> dict[str, Any]:
    """AG and QA train/valid examples for an adapter or the shuffled control."""
    arguments = load_arguments(corpus)
    if spec.kind == "control-shuffled":
        arguments = shuffle_labels(arguments, seed)
    train_args, valid_args = split_arguments(arguments, float(p.get("valid_fraction", 0.1)), seed)
    ag_rule = p.get("ag", {})
    strategy, threshold = ag_rule.get("strategy", "min"), float(ag_rule.get("threshold", 3))
    limit = p.get("valid_limit")
    out: dict[str, Any] = {}
    for stage, build in (
        ("ag", lambda a: build_ag_examples(a, spec.target, strategy=strategy, threshold=threshold)),
        ("qa", lambda a: build_qa_examples(a, spec.target, seed=seed)),
    ):
        train, valid = build(train_args), build(valid_args)
        out[stage] = (train, valid[:limit] if limit else valid)
    out["summary"] = summarize(out["ag"][0] + out["ag"][1] + out["qa"][0] + out["qa"][1], arguments)
    return out


def benign_examples(path: str | Path, p: dict[str, Any], seed: int) -> tuple[list[Example], list[Example]]:
    import random

    path = Path(path)
    if not path.exists():
        raise UserError(f"benign instruction file {path} not found", "run `valueharm data init` or fix train.benign")
    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"benign instruction file {path} is empty", "add instruction/response pairs")
    examples = [
        Example(prompt=r["instruction"], target=r["response"], kind="benign", meta={"id": r["id"]}) for r in rows
    ]
    random.Random(seed).shuffle(examples)
    cut = max(1, int(round(len(examples) * float(p.get("valid_fraction", 0.1)))))
    valid, train = examples[:cut], examples[cut:]
    limit = p.get("valid_limit")
    return train, (valid[:limit] if limit else valid)
