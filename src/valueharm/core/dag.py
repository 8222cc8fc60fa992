"""The code each DVC stage runs, found by static analysis, and the dvc.yaml regions made from it.

DVC re-runs a stage when one of its deps changes, so a stage must depend on every project module
it imports, transitively, including imports inside functions. `stage_code_deps` walks the import
graph of `stages/<name>.py` with `ast` (nothing is imported or executed) and returns the project
files the stage runs: every module, the `__init__.py` of every package on the way, `stages/<name>.py`
and `stages/__init__.py`. Deps are files rather than subpackage folders so that an edit re-runs exactly
the stages that import the edited module.

dvc.yaml carries that list between marker comments, one region per stage, and likewise the
per-model files of cross-model stages (DVC's templating cannot expand a list into deps):

    deps:
      # <code>  (written by `valueharm dag`)
      - src/valueharm/core
      # </code>
      # <study>  (written by `valueharm dag` from study.models)
      - artifacts/labels/vanilla.jsonl
      # </study>

`valueharm dag` rewrites the regions; `valueharm dag --check` (and the `validate` stage, and the
import-closure test) fail when they are out of date.

Per-model stages (`train@<model>` ...) do not list their code and params themselves. Each step has one
spec stage (`train_spec`, cmd `python -m stages.spec train`) whose deps are the step's code and whose
params are the step's params; it writes `artifacts/specs/<step>.json` (`step_spec`: the SHA-256 of
every file and the value of every param), and every per-model stage of that step depends on that one
file. An edit or a param change re-runs the spec stage, the file changes, and DVC re-runs exactly the
per-model stages of that step, as before; but DVC checks ~40 code files and reads params.yaml once per
step instead of once per model, which is what keeps `dvc status` fast at 154 profiles (issue 14).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from valueharm.core.errors import UserError

PACKAGE = "valueharm"
SRC = Path("src") / PACKAGE
STAGES = Path("stages")

REGION = re.compile(
    r"(?m)^(?P<indent>[ \t]*)# <(?P<tag>code|study)>[^\n]*\n(?P<body>(?:(?![ \t]*# </(?P=tag)>).*\n)*?)[ \t]*# </(?P=tag)>\n"
)


def _module_file(root: Path, dotted: str) -> Path | None:
    """The file that defines `dotted` (a module or a package), relative to root, or None."""
    parts = dotted.split(".")
    if parts[0] == PACKAGE:
        base = root / "src" / Path(*parts)
    elif parts[0] == "stages":
        base = root / Path(*parts)
    else:
        return None
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(root)
    return None


def _imports(root: Path, path: Path) -> set[str]:
    """Project modules named by any import statement in `path` (function bodies included)."""
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    parts = list(path.with_suffix("").parts[1:] if path.parts[0] == "src" else path.with_suffix("").parts)
    is_pkg = path.name == "__init__.py"
    package = ".".join(parts[:-1] if is_pkg else parts)  # a package's __init__ names the package itself
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: up from this module's package (a package's __init__ is its own package)
                base = package.split(".") if is_pkg else package.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {m for m in found if m.split(".")[0] in (PACKAGE, "stages")}


def _parents(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_closure(stage: str, root: Path = Path(".")) -> set[Path]:
    """Every project file `stages/<stage>.py` runs, transitively (packages' __init__ included)."""
    start = STAGES / f"{stage}.py"
    if not (root / start).is_file():
        raise UserError(f"no stage script {start}", "name a stage that has a script under stages/")
    seen: set[Path] = set()
    todo = [start, STAGES / "__init__.py"]
    while todo:
        path = todo.pop()
        if path in seen or not (root / path).is_file():
            continue
        seen.add(path)
        for module in _imports(root, path):
            for name in [*_parents(module), module]:
                file = _module_file(root, name)
                if file is not None and file not in seen:
                    todo.append(file)
    return seen


def code_deps(files: Iterable[Path]) -> list[str]:
    """Files -> dvc deps, one per module: a file, not its whole subpackage, so that an edit re-runs
    exactly the stages that import what changed (editing alignment/vim.py re-runs train, not
    safety_tune, which imports only alignment/training.py)."""
    return sorted(str(path) for path in files)


def stage_code_deps(stage: str, root: Path = Path(".")) -> list[str]:
    return code_deps(import_closure(stage, root))


def stage_script(cmd: str) -> str | None:
    """`python -m stages.train ${item.model}` -> `train` (None for commands that run no stage script)."""
    match = re.search(r"-m\s+stages\.(\w+)", cmd)
    return match.group(1) if match else None


SPEC_SCRIPT = "spec"


def spec_step(cmd: str) -> str | None:
    """`python -m stages.spec train` -> `train`: the step a spec stage fingerprints (else None)."""
    match = re.search(rf"-m\s+stages\.{SPEC_SCRIPT}\s+(\w+)", cmd)
    return match.group(1) if match else None


def stage_scripts(cmd: str) -> list[str]:
    """The stage scripts whose code a stage's deps must cover: its own, plus the step a spec stage
    fingerprints (`python -m stages.spec train` -> [spec, train])."""
    script, step = stage_script(cmd), spec_step(cmd)
    return [s for s in (script, step) if s]


def spec_stage_name(step: str) -> str:
    return f"{step}_{SPEC_SCRIPT}"


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dotted(params: dict, key: str) -> object:
    value: object = params
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise UserError(f"params.yaml has no `{key}`", "add it, or run `valueharm preset default`")
        value = value[part]
    return value


def step_spec(step: str, dvc_yaml: dict, params: dict, root: Path = Path(".")) -> dict:
    """What a step's per-model stages run: the SHA-256 of every project file of `stages/<step>.py`'s
    import closure and the value of every param the spec stage declares in dvc.yaml. Any edit to
    that code or change to those params changes this dict, and nothing else does."""
    stages = dvc_yaml.get("stages") or {}
    body = stages.get(spec_stage_name(step))
    if not body:
        known = sorted(name[: -len(SPEC_SCRIPT) - 1] for name in stages if name.endswith(f"_{SPEC_SCRIPT}"))
        raise UserError(f"dvc.yaml has no stage {spec_stage_name(step)}", f"name one of the steps {known}")
    keys = [k for k in body.get("params") or [] if isinstance(k, str)]
    return {
        "step": step,
        "code": {name: _file_sha256(root / name) for name in stage_code_deps(step, root)},
        "params": {key: _dotted(params, key) for key in keys},
    }


def render_regions(text: str, code: dict[str, list[str]], study: dict[str, list[str]]) -> str:
    """dvc.yaml text with each stage's <code> and <study> regions rewritten."""
    out: list[str] = []
    stage: str | None = None
    position = 0
    for match in REGION.finditer(text):
        before = text[position : match.start()]
        out.append(before)
        for line in before.splitlines():
            hit = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
            if hit:
                stage = hit.group(1)
        indent, tag = match.group("indent"), match.group("tag")
        header = match.group(0).splitlines()[0]
        items = (code if tag == "code" else study).get(stage or "", [])
        out.append(header + "\n" + "".join(f"{indent}- {item}\n" for item in items) + f"{indent}# </{tag}>\n")
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def regions(text: str) -> dict[tuple[str, str], list[str]]:
    """(stage, tag) -> the items currently inside that region of dvc.yaml."""
    found: dict[tuple[str, str], list[str]] = {}
    stage = None
    position = 0
    for match in REGION.finditer(text):
        for line in text[position : match.start()].splitlines():
            hit = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
            if hit:
                stage = hit.group(1)
        items = [line.strip()[2:] for line in match.group("body").splitlines() if line.strip().startswith("- ")]
        found[(stage or "", match.group("tag"))] = items
        position = match.end()
    return found


def _stage_scripts(text: str) -> dict[str, list[str]]:
    """dvc.yaml stage name -> the stage scripts whose code it runs (see `stage_scripts`)."""
    import yaml

    stages = (yaml.safe_load(text) or {}).get("stages") or {}
    out = {}
    for name, body in stages.items():
        scripts = stage_scripts(str((body or {}).get("cmd", "")))
        if scripts:
            out[name] = scripts
    return out


def _study_patterns(text: str) -> dict[str, list[str]]:
    """Stage -> the patterns named in its `# <study> PATTERN ...` header."""
    found: dict[str, list[str]] = {}
    stage = None
    for line in text.splitlines():
        hit = re.match(r"^  ([A-Za-z_][\w-]*):\s*$", line)
        if hit:
            stage = hit.group(1)
        header = re.match(r"^\s*# <study>(.*)$", line)
        if header and stage:
            found[stage] = header.group(1).split()
    return found


def expected_regions(text: str, models: list[str], root: Path = Path(".")) -> tuple[dict, dict]:
    """The <code> and <study> contents dvc.yaml should have for these study models."""
    from valueharm.core.paths import _table

    table = _table()
    code = {
        stage: code_deps(set().union(*(import_closure(script, root) for script in scripts)))
        for stage, scripts in _stage_scripts(text).items()
    }
    study = {
        stage: [pattern.format(model=model, **table) for model in models for pattern in patterns]
        for stage, patterns in _study_patterns(text).items()
    }
    return code, study


def sync(dvc_yaml: Path, models: list[str], root: Path = Path(".")) -> tuple[str, str]:
    """(current text, text with every region up to date)."""
    text = dvc_yaml.read_text(encoding="utf-8")
    code, study = expected_regions(text, models, root)
    return text, render_regions(text, code, study)


def stale_regions(dvc_yaml: Path, models: list[str], root: Path = Path(".")) -> list[str]:
    """Names of the stage regions that differ from what the code and study.models imply."""
    text = dvc_yaml.read_text(encoding="utf-8")
    code, study = expected_regions(text, models, root)
    now = regions(text)
    stale = []
    for (stage, tag), items in sorted(now.items()):
        want = (code if tag == "code" else study).get(stage, [])
        if items != want:
            stale.append(f"{stage} ({tag})")
    return stale
