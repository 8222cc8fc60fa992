"""`valueharm profiles select` (docs/design.md contract 1) and the `profiles` stage script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from valueharm.cli.profiles import profiles
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES
from valueharm.data import survey as S

ROOT = Path(__file__).resolve().parents[3]
STAGE = ROOT / "stages" / "profiles.py"
REALDATA = ROOT.parent / "shared" / "realdata"


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli")
    full = S.generate_synthetic_survey(scale=0.2)  # 600 respondents keeps the tests quick
    path = out / "items.csv"
    path.write_text(S.synthetic_csv_text(full))
    return path


def invoke(*args: str):
    return CliRunner().invoke(profiles, ["select", *args])


def test_select_writes_contract_manifest(survey_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "profiles.json"
    result = invoke(
        "--survey",
        str(survey_file),
        "--format",
        "items",
        "--orientation",
        "reversed",
        "--nearest",
        "3",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "wrote 56 profiles" in result.output
    manifest = json.loads(out.read_text())
    assert manifest["values"] == list(VALUES)
    assert len(manifest["profiles"]) == 14 * 4
    first = manifest["profiles"][0]
    assert set(first) == {"name", "anchor", "rank", "scores", "jsd", "respondent"}
    assert first["name"] == "achievement" and first["rank"] == 0 and first["jsd"] is None
    assert manifest["profiles"][1]["name"] == "achievement-r01"
    # byte-identical rerun
    again = tmp_path / "again.json"
    invoke("--survey", str(survey_file), "--nearest", "3", "--out", str(again))
    assert again.read_bytes() == out.read_bytes()  # defaults: items, reversed


def test_raw_orientation_anchors_and_centre(survey_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw.json"
    result = invoke(
        "--survey",
        str(survey_file),
        "--orientation",
        "raw",
        "--nearest",
        "2",
        "--centre",
        "--anchors",
        "hedonism,self_transcendence",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(out.read_text())["profiles"]]
    assert names == [
        "hedonism",
        "hedonism-r01",
        "hedonism-r02",
        "self_transcendence",
        "self_transcendence-r01",
        "self_transcendence-r02",
    ]


def test_scores_format(tmp_path: Path) -> None:
    src = tmp_path / "scores.csv"
    rows = [
        "Achievement,Benevolence,Conformity,Hedonism,Power,Security,Self-direction,Stimulation,Tradition,Universalism",
        "1,1,1,6,1,1,1,1,1,1",
        "2,2,2,2,2,2,2,2,2,2",
        "1,1,1,5,1,1,1,1,1,2",
    ]
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "s.json"
    result = invoke(
        "--survey",
        str(src),
        "--format",
        "scores",
        "--orientation",
        "raw",
        "--nearest",
        "2",
        "--anchors",
        "hedonism",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    prof = json.loads(out.read_text())["profiles"]
    assert [p["respondent"] for p in prof] == [None, "row1", "row3"] and prof[1]["jsd"] == 0.0


def _bad_items(tmp_path: Path) -> dict[str, Path]:
    ok = {i: 3 for i in S.ITEM_ORDER}
    files = {}
    files["empty"] = tmp_path / "empty.csv"
    files["empty"].write_text("")
    files["missing_cols"] = tmp_path / "cols.csv"
    pd.DataFrame([{k: v for k, v in ok.items() if k != "impenv"}]).to_csv(files["missing_cols"], index=False)
    files["non_numeric"] = tmp_path / "nn.csv"
    pd.DataFrame([ok, {**ok, "ipmodst": "abc"}]).to_csv(files["non_numeric"], index=False)
    files["no_complete"] = tmp_path / "nc.csv"
    pd.DataFrame([{**ok, "impfun": 8}, {**ok, "ipcrtiv": 99}]).to_csv(files["no_complete"], index=False)
    files["small"] = tmp_path / "small.csv"
    pd.DataFrame([ok, ok]).to_csv(files["small"], index=False)
    return files


@pytest.mark.parametrize(
    "case, extra, message",
    [
        ("empty", [], "is empty"),
        ("missing_cols", [], "missing PVQ-21 item columns: impenv"),
        ("non_numeric", [], r"'abc' in column ipmodst, data row 2 \(line 3\)"),
        ("no_complete", [], "no complete respondent"),
        ("small", ["--nearest", "3"], "nearest = 3 is larger than the 2 complete respondents"),
        ("small", ["--anchors", "hedonsim"], "unknown value name 'hedonsim'"),
        ("small", ["--nearest", "-1"], "nearest must be a whole number"),
        ("small", ["--format", "scores"], "missing value columns"),
    ],
)
def test_bad_input_one_line_nothing_written(tmp_path: Path, case: str, extra: list[str], message: str) -> None:
    files = _bad_items(tmp_path)
    out = tmp_path / "out" / "p.json"
    result = invoke("--survey", str(files[case]), "--nearest", "1", *extra, "--out", str(out))
    assert isinstance(result.exception, UserError), result.output
    assert re.search(message, str(result.exception))
    assert "\n" not in str(result.exception)
    assert not out.exists() and not out.parent.exists()


def test_centre_with_scores_rejected(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    src.write_text(",".join(VALUES) + "\n" + ",".join(["2"] * 10) + "\n")
    result = invoke(
        "--survey", str(src), "--format", "scores", "--centre", "--nearest", "1", "--out", str(tmp_path / "o.json")
    )
    assert isinstance(result.exception, UserError) and "centring needs item data" in str(result.exception)
    assert not (tmp_path / "o.json").exists()


def test_bad_choice_is_a_usage_error(survey_file: Path, tmp_path: Path) -> None:
    result = invoke("--survey", str(survey_file), "--orientation", "flipped", "--out", str(tmp_path / "o.json"))
    assert result.exit_code == 2 and "flipped" in result.output
    assert not (tmp_path / "o.json").exists()


# ---------------------------------------------------------------------------------------------
# the stage script, run as DVC runs it (cwd = repository root with params.yaml)


def run_stage(workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(STAGE)], cwd=workdir, capture_output=True, text=True, env=env, timeout=120
    )


def test_stage_writes_outputs_and_fails_cleanly(survey_file: Path, tmp_path: Path) -> None:
    params = {
        "profiles": {
            "survey": str(survey_file),
            "format": "items",
            "orientation": "reversed",
            "centre": False,
            "nearest": 2,
            "anchors": "all",
            "ranks": [0, 2],
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run_stage(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "artifacts" / "profiles"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "survey_summary.json",
        "value_structure.csv",
        "value_structure.png",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["profiles"]) == 28 and manifest["profiles"][1]["name"] == "achievement-r02"
    summary = json.loads((out / "survey_summary.json").read_text())
    assert summary["n_rows"] == 600 and summary["orientation"] == "reversed"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # bad param: one line, exit 2, previous outputs untouched and nothing new
    params["profiles"]["anchors"] = ["hedonism", "kindness"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run_stage(tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown value name 'kindness'") and proc.stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == ["profiles"]


def test_stage_paper_setting_on_released_vectors(tmp_path: Path) -> None:
    if not (REALDATA / "ess_distribution.csv").exists():
        pytest.skip(f"real data folder {REALDATA} absent (only on the build machine)")
    params = {
        "profiles": {
            "survey": str(REALDATA / "ess_distribution.csv"),
            "format": "scores",
            "orientation": "raw",
            "centre": False,
            "nearest": 10,
            "anchors": "all",
            "ranks": "all",
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = run_stage(tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "artifacts" / "profiles" / "manifest.json").read_text())
    assert len(manifest["profiles"]) == 154


def test_ties_option(survey_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    result = invoke("--survey", str(survey_file), "--nearest", "3", "--ties", "release", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["profiles"]) == 14 * 4
    bad = invoke("--survey", str(survey_file), "--ties", "stable", "--out", str(out))
    assert bad.exit_code != 0 and "file" in bad.output and "release" in bad.output


@pytest.mark.realdata
def test_ties_release_on_the_released_vectors(realdata: Path, tmp_path: Path) -> None:
    """Power ranks 3-5 are exact ties: file order keeps rows 1661, 9532, 11913; the release had 11913, 1661, 9532."""
    picks = {}
    for ties in ("file", "release"):
        out = tmp_path / f"{ties}.json"
        args = ["--survey", str(realdata / "ess_distribution.csv"), "--format", "scores", "--orientation", "raw"]
        result = invoke(*args, "--ties", ties, "--out", str(out))
        assert result.exit_code == 0, result.output
        by_name = {p["name"]: p["respondent"] for p in json.loads(out.read_text())["profiles"]}
        picks[ties] = [by_name[f"power-r{r:02d}"] for r in (3, 4, 5)]
    assert picks == {"file": ["row1661", "row9532", "row11913"], "release": ["row11913", "row1661", "row9532"]}
