"""Building the training pairs of every trained model of the study (VIM, controls).

`vim.py` builds examples from arguments; this module chooses which examples a model gets:
its profile's AG then QA examples, a value-free version of them for `control-shuffled`, or the
benign instruction pairs for `control-benign`; split into train/validation the same way for all.

Seeds. Every random choice of one adapter (train/validation split, training order, stochastic
rounding, QA balancing, the control's permutations) derives from (replicate seed, model name)
through `vim.derive_seed`, so that two adapters never share a split or a data order by accident
(`hedonism` and `power` did when both used the run seed), and `study.seeds` trains replicates.

The authors' split files can replace the seeded split: `train.split_files: {train: PATH, valid: PATH}`
(their `argument_generation/value_split/{train,valid}.csv`); the corpus is then ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from valueharm.alignment.vim import (
    Example,
    balance_qa,
    build_ag_examples,
    build_qa_examples,
    check_qa_balance,
    derive_seed,
    shuffle_labels,
    split_arguments,
    summarize,
    value_free_qa,
)
from valueharm.core.atomic import read_jsonl
from valueharm.core.errors import UserError
from valueharm.data.arguments import Argument, load_arguments
from valueharm.profiles.study import ModelSpec

__all__ = ["model_seeds", "check_seeds", "load_split", "vim_examples", "benign_examples"]


def check_seeds(seeds: Any, default: int = 42) -> list[int]:
    """`study.seeds`: a non-empty list of distinct integers (null: [the run seed])."""
    if seeds is None:
        return [int(default)]
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise UserError(f"study.seeds {seeds!r} must be a non-empty list of integers", "e.g. study.seeds: [42]")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise UserError(f"study.seeds has {s!r}, not an integer", "e.g. study.seeds: [42, 43]")
        out.append(int(s))
    if len(set(out)) != len(out):
        dup = next(s for s in out if out.count(s) > 1)
        raise UserError(f"study.seeds lists {dup} twice", "give each replicate its own seed")
    return out


def model_seeds(seed: int, name: str) -> dict[str, int]:
    """The seeds one adapter replicate uses, each derived from (seed, model name, purpose)."""
    return {
        purpose: derive_seed(seed, name, purpose)
        for purpose in ("split", "train", "rounding", "balance", "labels", "scores")
    }


def load_split(split_files: Mapping[str, Any]) -> tuple[list[Argument], list[Argument]]:
    """(train, valid) arguments from the authors' split files."""
    if not isinstance(split_files, Mapping) or set(split_files) != {"train", "valid"}:
        raise UserError(f"train.split_files {split_files!r} must name a train and a valid file", "or set it to null")
    train, valid = (load_arguments(split_files[k]) for k in ("train", "valid"))
    if not train:
        raise UserError(f"train.split_files.train {split_files['train']} has no argument", "check the file")
    return train, valid


def vim_examples(spec: ModelSpec, corpus: str | Path, p: dict[str, Any], seed: int) -> dict[str, Any]:
    """AG and QA train/valid examples for one adapter replicate (`seed` is the replicate's seed)."""
    seeds = model_seeds(seed, spec.name)
    balance = check_qa_balance(p.get("qa_balance", "none"))
    if p.get("split_files"):
        train_args, valid_args = load_split(p["split_files"])
        arguments = train_args + valid_args
        if spec.kind == "control-shuffled":
            train_args = shuffle_labels(train_args, seeds["labels"])
            valid_args = shuffle_labels(valid_args, seeds["labels"] + 1)
    else:
        arguments = load_arguments(corpus)
        if spec.kind == "control-shuffled":
            arguments = shuffle_labels(arguments, seeds["labels"])
        train_args, valid_args = split_arguments(arguments, float(p.get("valid_fraction", 0.1)), seeds["split"])
    ag_rule = p.get("ag", {})
    strategy, threshold = ag_rule.get("strategy", "min"), float(ag_rule.get("threshold", 3))
    limit = p.get("valid_limit")
    out: dict[str, Any] = {}
    for stage in ("ag", "qa"):
        parts = []
        for part, args in (("train", train_args), ("valid", valid_args)):
            if stage == "ag":
                examples = build_ag_examples(args, spec.target, strategy=strategy, threshold=threshold)
            else:
                examples = build_qa_examples(args, spec.target, seed=derive_seed(seeds["rounding"], part))
                if spec.kind == "control-shuffled":
                    examples = value_free_qa(examples, spec.target, derive_seed(seeds["scores"], part))
                if balance == "balanced":
                    examples = balance_qa(examples, derive_seed(seeds["balance"], part))
            parts.append(examples)
        train, valid = parts
        out[stage] = (train, valid[:limit] if limit else valid)
    out["summary"] = {
        **summarize(out["ag"][0] + out["ag"][1] + out["qa"][0] + out["qa"][1], arguments),
        "qa_balance": balance,
        "qa_high_share": _high_share(out["qa"][0]),
        "seeds": seeds,
    }
    return out


def _high_share(examples: list[Example]) -> float | None:
    if not examples:
        return None
    return sum(1 for e in examples if int(e.meta["answer"]) >= 4) / len(examples)


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
    random.Random(derive_seed(seed, "control-benign", "split")).shuffle(examples)
    cut = max(1, int(round(len(examples) * float(p.get("valid_fraction", 0.1)))))
    valid, train = examples[:cut], examples[cut:]
    limit = p.get("valid_limit")
    return train, (valid[:limit] if limit else valid)
