"""The import-closure test: every stage's dvc deps cover every project module it imports, transitively."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from valueharm.core.dag import (
    import_closure,
    regions,
    render_regions,
    spec_stage_name,
    spec_step,
    stage_code_deps,
    stage_script,
    stage_scripts,
    stale_regions,
    step_spec,
)
from valueharm.core.errors import UserError

REPO = Path(__file__).resolve().parents[3]


def dvc_stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_stage_deps_cover_its_transitive_imports():
    """Directly, or through its step's spec file: `train@<model>` depends on artifacts/specs/train.json,
    which stage train_spec writes from the same files (its deps) and train's params."""
    stages = dvc_stages()
    checked = 0
    for name, body in stages.items():
        for script in stage_scripts(body["cmd"]):
            deps = {str(d) for d in body.get("deps", [])}
            if f"${{paths.specs}}/{script}.json" in deps:
                spec = stages[spec_stage_name(script)]
                assert spec_step(spec["cmd"]) == script
                assert f"${{paths.specs}}/{script}.json" in spec["outs"]
                deps = {str(d) for d in spec.get("deps", [])}
            missing = [f for f in stage_code_deps(script, REPO) if f not in deps]
            assert not missing, f"stage {name} imports {missing} but dvc.yaml does not list them: run `valueharm dag`"
            checked += 1
    assert checked >= 19


def test_per_model_stages_depend_on_their_spec_not_on_code_or_params():
    """The design that keeps 640 stages fast: a matrix stage lists no code file and no param itself."""
    matrix = {name: body for name, body in dvc_stages().items() if "matrix" in body}
    assert set(matrix) == {"train", "align_check", "generate", "judge"}
    for name, body in matrix.items():
        assert "params" not in body, name
        assert not [d for d in body["deps"] if str(d).startswith(("src/", "stages/"))], name
        assert f"${{paths.specs}}/{name}.json" in body["deps"], name


def test_step_spec_changes_with_the_code_and_the_params_and_nothing_else(toy):
    dvc_yaml = {"stages": {"s_spec": {"cmd": "python -m stages.spec s", "params": ["seed", "train.lr"]}}}
    params = {"seed": 1, "train": {"lr": 0.1, "steps": 3}, "judge": {"name": "x"}}
    first = step_spec("s", dvc_yaml, params, toy)
    assert first["params"] == {"seed": 1, "train.lr": 0.1}
    assert set(first["code"]) == {str(p) for p in import_closure("s", toy)}
    assert step_spec("s", dvc_yaml, {**params, "judge": {"name": "y"}}, toy) == first  # an undeclared param
    (toy / "src/valueharm/c/unused.py").write_text("x = 2\n")  # a file s does not import
    assert step_spec("s", dvc_yaml, params, toy) == first
    assert step_spec("s", dvc_yaml, {**params, "train": {"lr": 0.2}}, toy) != first
    (toy / "src/valueharm/b/y.py").write_text("import sys\n")  # imported lazily, two hops away
    assert step_spec("s", dvc_yaml, params, toy)["code"] != first["code"]


def test_step_spec_names_a_missing_param_or_step(toy):
    dvc_yaml = {"stages": {"s_spec": {"cmd": "python -m stages.spec s", "params": ["train.lr"]}}}
    with pytest.raises(UserError, match=r"params.yaml has no `train.lr`"):
        step_spec("s", dvc_yaml, {"train": {}}, toy)
    with pytest.raises(UserError, match=r"no stage t_spec.*\['s'\]"):
        step_spec("t", dvc_yaml, {"train": {"lr": 1}}, toy)


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


def test_stage_scripts_of_a_spec_stage_include_the_step_it_fingerprints():
    assert stage_script("python -m stages.train ${item.model}") == "train"
    assert stage_scripts("python -m stages.train ${item.model}") == ["train"]
    assert stage_scripts("python -m stages.spec judge") == ["spec", "judge"]
    assert stage_scripts("echo no stage") == []
