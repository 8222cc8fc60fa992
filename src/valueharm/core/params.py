"""Reading params.yaml and the presets in configs/.

Stage scripts call `load_params()` and pass plain dicts to the library, which keeps the library
usable without DVC. `run_stage` wraps a stage's main so that a `UserError` becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from valueharm.core.errors import UserError

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml, checked against core/schema.py, with every default filled in."""
    from valueharm.core.schema import to_dict, validate_params

    return to_dict(validate_params(load_raw_params(path)))


def load_raw_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """params.yaml as written, without checks or defaults."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found", "run from the repository root or `valueharm preset default`")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(
            f"{path} is not valid YAML ({exc.__class__.__name__})", "fix the file or rerun `valueharm preset default`"
        ) from exc
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of sections", "rerun `valueharm preset default`")
    return data


def preset_params(name: str, configs: str | Path = "configs") -> dict[str, Any]:
    """The defaults with configs/NAME.yaml merged on top, checked (an unknown preset names the valid ones)."""
    from valueharm.core.registry import unknown_name
    from valueharm.core.schema import defaults, merge, to_dict, validate_params

    configs = Path(configs)
    source = configs / f"{name}.yaml"
    if not source.exists():
        choices = sorted(p.stem for p in configs.glob("*.yaml")) if configs.is_dir() else []
        raise unknown_name("preset", name, choices, f"no {source}")
    try:
        overlay = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{source} is not valid YAML ({exc.__class__.__name__})", "fix the preset file") from exc
    return to_dict(validate_params(merge(defaults(), overlay)))


PARAMS_HEADER = """\
# Written by `valueharm preset {name}`: the defaults (src/valueharm/core/schema.py, where every param
# is documented) with configs/{name}.yaml merged on top. One section per stage; `value` is the focus of
# `dvc exp run -S value=...`. Edit freely: the `validate` stage checks every key before any work.
"""


def write_params(params: dict[str, Any], name: str, out: str | Path = PARAMS_FILE) -> None:
    from valueharm.core.atomic import write_text

    # Block style only: after `dvc exp run -S` rewrites the file (ruamel's round trip drops the quotes of
    # URLs), ruamel's C parser, which DVC uses for speed, rejects a URL inside a flow mapping.
    body = yaml.safe_dump(params, sort_keys=False, default_flow_style=False, width=110, allow_unicode=True)
    write_text(out, PARAMS_HEADER.format(name=name) + body)


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in params or not isinstance(params[name], dict):
        raise UserError(f"params.yaml has no section `{name}`", "rerun `valueharm preset default` or add the section")
    return params[name]


def require(mapping: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    if key not in mapping:
        raise UserError(f"params `{where}.{key}` is missing", f"add `{key}` under `{where}` in params.yaml")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"params `{where}.{key}` must be {names}, got {value!r}", "fix params.yaml")
    return value


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and make torch deterministic on CPU.

    Deterministic algorithms would also NaN-fill every fresh tensor (torch's
    `fill_uninitialized_memory`), a debugging aid that cost 7-10% of LoRA training tokens/s on the
    2-core AMX Xeon (bf16 autocast, 8 x 128). Nothing here reads memory before writing it, so the
    fill changes no output; it is off."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage entry point; user errors print one line and exit 2. The stage's fixed cost
    (imports, model loads) goes to reports/perf/<stage>.json (`core.perf`)."""
    from valueharm.core.perf import StageClock, stage_name

    clock = StageClock(stage_name(getattr(main, "__module__", "stage"), sys.argv))
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    clock.finish()
