"""Artifact paths are written once (core/paths.yaml): dvc.yaml reads them as vars, stages ask core.paths."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from valueharm.core import paths

ROOT = Path(__file__).resolve().parents[3]
PIPELINE_FOLDERS = ("artifacts/", "reports/", "dvclive/")


def _string_literals(source: str) -> list[tuple[int, str]]:
    """Every string constant of a module except docstrings."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_stage_spells_an_artifact_path():
    found = [
        f"{script.name}:{line}: {text!r}"
        for script in sorted((ROOT / "stages").glob("*.py"))
        for line, text in _string_literals(script.read_text(encoding="utf-8"))
        if text.startswith(PIPELINE_FOLDERS)
    ]
    assert not found, "use valueharm.core.paths instead of literals:\n" + "\n".join(found)


def test_dvc_yaml_reads_the_same_paths_file():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    assert pipeline["vars"] == ["src/valueharm/core/paths.yaml"]
    table = yaml.safe_load((ROOT / "src/valueharm/core/paths.yaml").read_text(encoding="utf-8"))["paths"]
    assert paths.path("manifest") == Path(table["manifest"])


def test_per_model_helpers_follow_the_table():
    assert paths.generations_file("power") == paths.path("generations") / "power.jsonl"
    assert paths.labels_file("power") == paths.path("labels") / "power.jsonl"
    assert paths.align_file("power") == paths.path("align") / "power.jsonl"
    assert paths.model_dir("power") == paths.path("models") / "power"
    assert paths.perf_file("train", "power") == paths.path("perf") / "train-power.json"
    assert paths.report_file("focus.json") == paths.path("reports") / "focus.json"
