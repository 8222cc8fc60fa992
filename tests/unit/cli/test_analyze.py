"""`valueharm analyze` on a hand-made contract-2 table: outputs, determinism, bad input."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from valueharm.analysis import run as stats
from valueharm.cli.analyze import analyze
from valueharm.core.errors import UserError

HEADER = "Model,Prompt ID,category,score,flagged,Achievement,Benevolence,Conformity,Hedonism,Power,Security,Self-Direction,Stimulation,Tradition,Universalism"
PROFILES = {  # tradition is 2 for every profiled model: a constant column
    "hed": "1,1,1,6,1,1,1,1,2,1",
    "pow": "1,1,1,1,6,1,1,1,2,1",
    "uni": "1,1,1,1,1,1,1,1,2,6",
    "mixA": "3,4,2,5,2,3,4,3,2,4",
    "mixB": "4,2,3,2,5,4,2,2,2,2",
    "vanilla": ",,,,,,,,,",
}
LABELS = {  # (score, flagged) for prompts a1, a2 (adult_content), m1, m2 (malware)
    "hed": [(5, 1), (4, 1), (2, 0), (1, 0)],
    "pow": [(2, 0), (1, 0), (4, 1), (5, 1)],
    "uni": [(1, 0), (1, 0), (1, 0), (2, 0)],
    "mixA": [(4, 1), (4, 0), (2, 0), (2, 0)],
    "mixB": [(2, 0), (2, 0), (4, 1), (3, 0)],
    "vanilla": [(2, 0), (3, 1), (2, 0), (2, 0)],
}
PROMPTS = [("a1", "adult_content"), ("a2", "adult_content"), ("m1", "malware"), ("m2", "malware")]


def handmade_csv() -> str:
    lines = [HEADER]
    for model, profile in PROFILES.items():
        for (pid, cat), (score, flagged) in zip(PROMPTS, LABELS[model]):
            lines.append(f"{model},{pid},{cat},{score},{flagged},{profile}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(handmade_csv())
    return path


def run(*args):
    return CliRunner().invoke(analyze, [str(a) for a in args], catch_exceptions=True)


def test_contract_outputs(results, tmp_path):
    out = tmp_path / "out"
    res = run("--results", results, "--out", out, "--bootstrap", 200, "--permutations", 500)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "correlations.csv" in res.output
    for name in ("correlations.csv", "glm.csv", "groups.csv", "models.csv", "hypotheses.csv", "summary.json"):
        assert (out / name).is_file(), name
    header = (out / "correlations.csv").read_text().splitlines()[0]
    assert header.startswith("value,category,method,r,p,q,ci_low,ci_high,n,")
    corr = pd.read_csv(out / "correlations.csv", keep_default_na=False, na_values=[""])
    assert len(corr) == 10 * 3 * 5 * 2  # values x (2 categories + overall) x methods x outcomes
    assert (corr["n"] == 5).all()  # vanilla has no profile
    # hedonism vs mean adult_content score across the five profiled models, by hand
    hed = [6, 1, 1, 5, 2]
    adult = [4.5, 1.5, 1.0, 4.0, 2.0]
    row = corr[
        (corr.value == "hedonism")
        & (corr.category == "adult_content")
        & (corr.method == "pearson")
        & (corr.outcome == "score")
    ].iloc[0]
    assert row["r"] == pytest.approx(np.corrcoef(hed, adult)[0, 1], abs=1e-5)
    assert row["ci_low"] <= row["r"] <= row["ci_high"]
    # constant column and too-few-models partials are reported, never 0
    trad = corr[corr.value == "tradition"]
    assert trad["r"].isna().all() and trad["note"].str.contains("tradition is constant").all()
    partial = corr[corr.method.str.startswith("partial") & (corr.value != "tradition")]
    assert partial["r"].isna().all() and partial["note"].str.contains("too few").all()
    for _, part in corr.groupby(["outcome", "method"]):
        np.testing.assert_allclose(part["q"], stats.benjamini_hochberg(part["p"].to_numpy()), rtol=1e-4)
    hyp = pd.read_csv(out / "hypotheses.csv", keep_default_na=False)
    assert set(hyp["status"]) <= {"supported", "contradicted", "inconclusive"}
    assert "S01" in set(hyp["id"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["with_profile"] == 5 and "model" in summary["unit_of_analysis"]
    assert summary["input"]["source"] == "results.csv"
    assert any("tradition" in w for w in summary["warnings"])
    assert "warning: value column 'tradition' is constant" in res.output
    groups = pd.read_csv(out / "groups.csv")
    assert set(groups["group"]) == {"value_aligned"} and set(groups["reference"]) == {"vanilla"}


def test_outputs_are_byte_identical_across_runs_and_formats(results, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out in (a, b):
        assert run("--results", results, "--out", out, "--bootstrap", 100, "--permutations", 200).exit_code == 0
    for name in ("correlations.csv", "glm.csv", "groups.csv", "models.csv", "hypotheses.csv", "summary.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    frame = pd.read_csv(results)
    jsonl = tmp_path / "results.jsonl"
    with jsonl.open("w") as handle:
        for rec in frame.to_dict(orient="records"):
            handle.write(
                json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}) + "\n"
            )
    assert run("--results", jsonl, "--out", c, "--bootstrap", 100, "--permutations", 200).exit_code == 0
    assert (a / "correlations.csv").read_bytes() == (c / "correlations.csv").read_bytes()


def test_options(results, tmp_path):
    out = tmp_path / "o"
    res = run(
        "--results",
        results,
        "--out",
        out,
        "--methods",
        "kendall",
        "--primary-method",
        "kendall",
        "--no-hypotheses",
        "--bootstrap",
        0,
        "--permutations",
        0,
    )
    assert res.exit_code == 0, res.output
    corr = pd.read_csv(out / "correlations.csv")
    assert set(corr["method"]) == {"kendall"} and corr["ci_low"].isna().all()
    assert not (out / "hypotheses.csv").exists()
    res = run("--results", results, "--out", out, "--methods", "pearson,cosine")
    assert isinstance(res.exception, UserError) and "unknown correlation method 'cosine'" in str(res.exception)
    res = run("--results", results, "--out", out, "--methods", "pearson")  # primary spearman missing
    assert isinstance(res.exception, UserError) and "primary method" in str(res.exception)


def _mutate(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text
    return text.replace(old, new, count)


BAD_INPUTS = {
    "missing column": (
        lambda t: "".join(line.rsplit(",", 1)[0] + "\n" for line in t.splitlines()),
        "missing column 'universalism'",
    ),
    "non-numeric score": (lambda t: _mutate(t, "hed,a2,adult_content,4,", "hed,a2,adult_content,four,"), "row 2"),
    "category with one model": (lambda t: t + "hed,x1,jailbreak,3,0," + PROFILES["hed"] + "\n", "category 'jailbreak'"),
    "flag not binary": (lambda t: _mutate(t, "pow,m1,malware,4,1", "pow,m1,malware,4,2"), "not 0 or 1"),
    "constant values": (
        lambda t: (
            "\n".join(
                [t.splitlines()[0]]
                + [
                    ",".join(line.split(",")[:5] + (["3"] * 10 if not line.startswith("vanilla") else [""] * 10))
                    for line in t.splitlines()[1:]
                ]
            )
            + "\n"
        ),
        "every value column is constant",
    ),
    "empty file": (lambda t: "", "is empty"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_and_nothing_written(results, tmp_path, case):
    mutate, fragment = BAD_INPUTS[case]
    results.write_text(mutate(handmade_csv()))
    out = tmp_path / "never"
    res = run("--results", results, "--out", out)
    assert isinstance(res.exception, UserError), res.output
    message = str(res.exception)
    assert fragment in message and "\n" not in message
    assert not out.exists()


def test_non_numeric_score_message_names_the_row(results, tmp_path):
    results.write_text(_mutate(handmade_csv(), "hed,a2,adult_content,4,", "hed,a2,adult_content,four,"))
    with pytest.raises(UserError) as info:
        stats.load_results(results)
    assert str(info.value).startswith(f"{results}: row 2 (model='hed', prompt_id='a2'): score 'four' is not a number")


def test_cli_main_prints_one_line_and_exits_2(results, tmp_path, monkeypatch, capsys):
    cli_module = importlib.import_module("valueharm.cli.main")  # the module (valueharm.cli.main is also the function)

    if "analyze" not in cli_module.cli.commands:
        cli_module.cli.add_command(analyze)
    results.write_text(handmade_csv().replace(",Universalism", ",Univ", 1))
    monkeypatch.setattr(sys, "argv", ["valueharm", "analyze", "--results", str(results), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit) as info:
        cli_module.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "'universalism'" in err[0]
