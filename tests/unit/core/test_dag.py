"""The import-closure test: every stage's dvc deps cover every project module it imports, transitively."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from valueharm.core.dag import import_closure, regions, render_regions, stage_code_deps, stage_script, stale_regions

REPO = Path(__file__).resolve().parents[3]


def dvc_stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_stage_deps_cover_its_transitive_imports():
    checked = 0
    for name, body in dvc_stages().items():
        script = stage_script(body["cmd"])
        if script is None:
            continue
        deps = {str(d) for d in body.get("deps", [])}
        missing = [f for f in stage_code_deps(script, REPO) if f not in deps]
        assert not missing, f"stage {name} imports {missing} but dvc.yaml does not list them: run `valueharm dag`"
        checked += 1
    assert checked >= 15


def test_regions_match_the_code_and_the_study_models():
    models = yaml.safe_load((REPO / "params.yaml").read_text())["study"]["models"]
    assert stale_regions(REPO / "dvc.yaml", models, REPO) == []


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    write(tmp_path, "stages/__init__.py", "")
    write(tmp_path, "stages/s.py", "from valueharm.a.x import f\n")
    write(tmp_path, "src/valueharm/__init__.py", "")
    write(tmp_path, "src/valueharm/a/__init__.py", "")
    write(tmp_path, "src/valueharm/a/x.py", "def f():\n    from valueharm.b import y  # lazy\n    return y\n")
    write(tmp_path, "src/valueharm/b/__init__.py", "from .z import g\n")
    write(tmp_path, "src/valueharm/b/y.py", "import os\n")
    write(tmp_path, "src/valueharm/b/z.py", "g = 1\n")
    write(tmp_path, "src/valueharm/c/unused.py", "")
    return tmp_path


def test_closure_follows_lazy_imports_relative_imports_and_submodules(toy):
    files = {str(p) for p in import_closure("s", toy)}
    assert files == {
        "stages/__init__.py",
        "stages/s.py",
        "src/valueharm/__init__.py",
        "src/valueharm/a/__init__.py",
        "src/valueharm/a/x.py",
        "src/valueharm/b/__init__.py",
        "src/valueharm/b/y.py",
        "src/valueharm/b/z.py",
    }


def test_render_regions_rewrites_only_the_marked_lines():
    text = textwrap.dedent(
        """\
        stages:
          s:
            cmd: python -m stages.s
            deps:
              - data/x
              # <code>
              - stale.py
              # </code>
              # <study> {labels}/{model}.jsonl
              # </study>
        """
    )
    new = render_regions(text, {"s": ["a.py", "b.py"]}, {"s": ["artifacts/labels/vanilla.jsonl"]})
    assert regions(new) == {("s", "code"): ["a.py", "b.py"], ("s", "study"): ["artifacts/labels/vanilla.jsonl"]}
    assert "- data/x" in new and "stale.py" not in new
    assert render_regions(new, {"s": ["a.py", "b.py"]}, {"s": ["artifacts/labels/vanilla.jsonl"]}) == new
