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
