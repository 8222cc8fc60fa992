"""Artifact paths, written once in `paths.yaml` beside this file (dvc.yaml reads the same file).

Stage scripts ask here instead of spelling paths, so a path changes in one place.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml


@cache
def _table() -> dict[str, str]:
    text = (resources.files("valueharm.core") / "paths.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text)["paths"])


def path(key: str) -> Path:
    """A pipeline path by its key in paths.yaml (e.g. `vanilla`, `manifest`)."""
    return Path(_table()[key])


def per_model(key: str, model: str, suffix: str = "") -> Path:
    """`<folder>/<model><suffix>`, e.g. per_model("generations", "power", ".jsonl")."""
    return Path(_table()[key]) / f"{model}{suffix}"


def model_dir(model: str) -> Path:
    return per_model("models", model)


def generations_file(model: str) -> Path:
    return per_model("generations", model, ".jsonl")


def labels_file(model: str) -> Path:
    return per_model("labels", model, ".jsonl")


def replicate_generations_file(model: str) -> Path:
    """The answers of a model's replicate adapters (study.seeds beyond the first), rows keyed by `adapter_seed`."""
    return per_model("replicate_generations", model, ".jsonl")


def replicate_labels_file(model: str) -> Path:
    return per_model("replicate_labels", model, ".jsonl")


def align_file(model: str) -> Path:
    return per_model("align", model, ".jsonl")


def report_file(name: str) -> Path:
    """A single-file report, e.g. report_file("focus.json") -> reports/focus.json."""
    return Path(_table()["reports"]) / name


def perf_file(stage: str, model: str | None = None) -> Path:
    return per_model("perf", f"{stage}-{model}" if model else stage, ".json")


__all__ = [
    "align_file",
    "generations_file",
    "labels_file",
    "model_dir",
    "replicate_generations_file",
    "replicate_labels_file",
    "path",
    "per_model",
    "perf_file",
    "report_file",
]
