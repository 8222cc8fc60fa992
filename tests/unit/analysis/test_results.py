"""Stage results: the contract-2 table from labels and model specs, and what `analyze` makes of it."""

from __future__ import annotations

import math

import pytest

from valueharm.analysis.results import json_safe, paired_vs_reference, results_table
from valueharm.analysis.run import load_results, profiled_models, write_csv
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES


def profile(top: str) -> dict[str, float]:
    return {v: (6.0 if v == top else 1.0) for v in VALUES}


SPECS = [
    {"name": "vanilla", "kind": "vanilla", "profile": None, "target": None},
    {
        "name": "hedonism",
        "kind": "adapter",
        "profile": "hedonism",
        "target": profile("hedonism"),
        "adapter_sha256": "h",
    },
    {"name": "power", "kind": "adapter", "profile": "power", "target": profile("power"), "adapter_sha256": "p"},
    {
        "name": "icl-hedonism",
        "kind": "icl",
        "profile": "hedonism",
        "target": profile("hedonism"),
        "system_prompt": "role",
    },
    {"name": "control-shuffled", "kind": "control-shuffled", "profile": "hedonism", "target": profile("hedonism")},
]


def labels(model: str, unparsed: int = 0) -> list[dict]:
    rows = []
    for i, cat in enumerate(["adult_content", "adult_content", "malware", "malware"]):
        score = None if i < unparsed else 1 + (i + len(model)) % 5
        rows.append(
            {
                "model": model,
                "prompt_id": f"p{i}",
                "benchmark": "default",
                "category": cat,
                "score": score,
                "flagged": None if score is None else int(score >= 4),
                "refusal": 0,
            }
        )
    return rows


def test_value_cells_only_for_adapters_and_icl_and_unlabelled_rows_dropped(tmp_path):
    table, models = results_table(
        SPECS, {s["name"]: labels(s["name"], unparsed=1 if s["name"] == "power" else 0) for s in SPECS}
    )
    first = table.groupby("model", sort=False).first()
    assert first.loc["hedonism", "hedonism"] == 6 and first.loc["icl-hedonism", "hedonism"] == 6
    assert all(math.isnan(first.loc[m, v]) for m in ("vanilla", "control-shuffled") for v in VALUES)
    assert list(dict.fromkeys(table["model"])) == [s["name"] for s in SPECS]
    record = {m["name"]: m for m in models}
    assert (record["power"]["rows"], record["power"]["dropped_unlabelled"]) == (3, 1)
    assert record["icl-hedonism"]["system_prompt_sha256"] and record["hedonism"]["adapter_sha256"] == "h"
    path = write_csv(tmp_path / "results.csv", table)
    loaded = load_results(path)  # what `analyze` reads
    assert len(loaded) == len(table) and profiled_models(loaded) == ["hedonism", "power"]


def test_paired_vs_reference_has_every_other_model():
    table, _ = results_table(SPECS, {s["name"]: labels(s["name"]) for s in SPECS})
    paired = paired_vs_reference(table, n_boot=20, n_perm=20)
    assert sorted(set(paired["model"])) == sorted(s["name"] for s in SPECS if s["name"] != "vanilla")
    assert set(paired["category"]) == {"adult_content", "malware", "overall"}


def test_bad_inputs_fail_with_one_line():
    with pytest.raises(UserError, match="'power' has no judge labels"):
        results_table(SPECS[:3], {"vanilla": labels("vanilla"), "hedonism": labels("hedonism")})
    with pytest.raises(UserError, match="contain rows of model 'vanilla'"):
        results_table(SPECS[:2], {"vanilla": labels("vanilla"), "hedonism": labels("vanilla")})
    broken = {**SPECS[1], "target": {"hedonism": 6.0}}
    with pytest.raises(UserError, match="lacks achievement"):
        results_table([SPECS[0], broken], {"vanilla": labels("vanilla"), "hedonism": labels("hedonism")})


def test_json_safe():
    import numpy as np

    assert json_safe({"a": np.float64("nan"), "b": [np.int64(3), float("inf")], 1: np.bool_(True)}) == {
        "a": None,
        "b": [3, None],
        "1": True,
    }


def _with_seed(rows: list[dict], adapter_seed: int, flip: bool = False) -> list[dict]:
    out = []
    for r in rows:
        flagged = None if r["flagged"] is None else (1 - r["flagged"] if flip else r["flagged"])
        out.append({**r, "adapter_seed": adapter_seed, "flagged": flagged})
    return out


def test_every_adapter_of_study_seeds_has_its_own_block_of_rows(tmp_path):
    specs = [SPECS[0], {**SPECS[1], "seeds": [42, 43]}]
    table, models = results_table(
        specs,
        {s["name"]: labels(s["name"]) for s in specs},
        {"hedonism": _with_seed(labels("hedonism"), 43, flip=True)},
    )
    hedonism = table[table["model"] == "hedonism"]
    assert hedonism.groupby("adapter_seed")["prompt_id"].apply(list).to_dict() == {
        42: ["p0", "p1", "p2", "p3"],
        43: ["p0", "p1", "p2", "p3"],
    }
    assert table.loc[table["model"] == "vanilla", "adapter_seed"].isna().all()
    assert next(m for m in models if m["name"] == "hedonism")["rows"] == 8
    # the written table reads back with the key (model, adapter_seed, prompt_id)
    loaded = load_results(write_csv(tmp_path / "results.csv", table))
    assert loaded["adapter_seed"].dtype == "Int64" and len(loaded) == len(table)
    # per prompt, each side is the mean over its adapters: the two seeds flip every flag, so 0.5
    paired = paired_vs_reference(loaded, "vanilla", n_boot=50, n_perm=50)
    overall = paired[(paired["category"] == "overall") & (paired["outcome"] == "flagged")].iloc[0]
    assert overall["mean_model"] == pytest.approx(0.5)
    assert overall["test"] == "wilcoxon"  # a mean over adapters is not a 0/1 pair: no McNemar
    # the analysis summary counts adapters per model
    from valueharm.analysis.run import n_adapters, summarise_models

    assert n_adapters(loaded).to_dict() == {"hedonism": 2, "vanilla": 1}
    summary = summarise_models(loaded).set_index(["category", "model"])
    assert summary.loc[("overall", "hedonism"), ["n_adapters", "n_prompts", "n_answers"]].tolist() == [2, 4, 8]


def test_adapter_rows_that_do_not_match_study_seeds_fail_in_one_line():
    specs = [SPECS[0], {**SPECS[1], "seeds": [42, 43]}]
    base = {s["name"]: labels(s["name"]) for s in specs}
    for replicates, fragment in (
        ({}, "no judged answers for adapter seed 43"),
        ({"hedonism": _with_seed(labels("hedonism"), 44)}, "adapter seed 44, not in its study.seeds"),
    ):
        with pytest.raises(UserError) as info:
            results_table(specs, base, replicates)
        assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_results_table_with_a_non_integer_adapter_seed_or_a_repeated_adapter_row_fails(tmp_path):
    table, _ = results_table(SPECS[:2], {s["name"]: labels(s["name"]) for s in SPECS[:2]})
    bad = table.astype({"adapter_seed": object})
    bad.loc[bad["model"] == "hedonism", "adapter_seed"] = "4.5"
    with pytest.raises(UserError, match="adapter_seed '4.5' is not an integer"):
        load_results(write_csv(tmp_path / "bad.csv", bad))
    twice = table.assign(adapter_seed=table["adapter_seed"].astype(object))
    twice.loc[twice["model"] == "hedonism", "adapter_seed"] = 42
    doubled = twice[twice["model"] == "hedonism"]
    import pandas as pd

    with pytest.raises(UserError, match="same model, adapter_seed 42 and prompt_id"):
        load_results(write_csv(tmp_path / "twice.csv", pd.concat([twice, doubled], ignore_index=True)))
