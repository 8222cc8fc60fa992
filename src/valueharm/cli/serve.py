"""`valueharm serve`: the one `vllm serve` command that serves every model of the current study.

    valueharm serve            # print the command (copy it to the GPU machine)
    valueharm serve --run      # run it here (needs vllm installed and a GPU)

One vLLM server holds the vanilla weights (served as `vanilla`; the prompt-only `icl-` baselines
run on them) and every trained adapter of `study.models` as a LoRA module named after the model
(`--lora-modules power-r03=artifacts/models/power-r03 ...`), so the `openai` generation backend
(params `generate.backend: openai`) addresses each study model by its name. Sizing from params:
`--max-loras` (adapters in one batch) = min(adapters, generate.openai.max_loras),
`--max-cpu-loras` = every adapter (none is re-read from disk), `--max-lora-rank` = the trained
rank rounded up to a rank vLLM supports, host and port from generate.openai.base_url.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click

from valueharm.core.errors import UserError

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def study_adapters(params: dict[str, Any]) -> list[str]:
    """The study models that are LoRA adapters (everything but vanilla and the prompt-only baselines)."""
    from valueharm.profiles.study import served_weights

    models = list((params.get("study") or {}).get("models") or [])
    return [m for m in models if served_weights(m) == m and m != "vanilla"]


def _base_weights(params: dict[str, Any]) -> tuple[str, str | None]:
    """What vLLM loads as the base: the merged safety-tuned vanilla folder, else model.name (+ revision)."""
    from valueharm.core.paths import path
    from valueharm.models.base import MODEL_SOURCES

    model = params.get("model") or {}
    if (params.get("safety_tune") or {}).get("enabled", False):
        return str(path("vanilla")), None
    name = str(model.get("name"))
    if name in MODEL_SOURCES:  # an embedded model is converted into artifacts/base_model
        return str(path("base_model")), None
    return name, model.get("revision")


def vllm_command(params: dict[str, Any]) -> list[str]:
    """The exact `vllm serve` argv for the study in `params`."""
    from valueharm.core.paths import model_dir

    openai = (params.get("generate") or {}).get("openai") or {}
    url = urlparse(str(openai.get("base_url", "http://127.0.0.1:8000/v1")))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UserError(
            f"generate.openai.base_url {openai.get('base_url')!r} is not an http(s) URL",
            "set it to where the server will listen, e.g. http://127.0.0.1:8000/v1",
        )
    adapters = study_adapters(params)
    base, revision = _base_weights(params)
    cmd = ["vllm", "serve", base]
    if revision:
        cmd += ["--revision", str(revision)]
    cmd += ["--served-model-name", "vanilla", "--host", url.hostname, "--port", str(url.port or 8000)]
    dtype = (params.get("model") or {}).get("dtype", "auto")
    cmd += ["--dtype", "auto" if dtype == "auto" else str(dtype), "--seed", str(int(params.get("seed", 42)))]
    if adapters:
        rank = max(int((params.get("train") or {}).get("lora", {}).get("r", 8)), 1)
        max_rank = next((r for r in VLLM_LORA_RANKS if r >= rank), rank)
        slots = min(len(adapters), int(openai.get("max_loras", 8)))
        cmd += ["--enable-lora", "--max-loras", str(slots), "--max-cpu-loras", str(len(adapters))]
        cmd += ["--max-lora-rank", str(max_rank), "--lora-modules"]
        cmd += [f"{name}={model_dir(name)}" for name in adapters]
    return cmd


def missing_adapters(params: dict[str, Any], root: str | Path = ".") -> list[str]:
    """Study adapters whose folder has no adapter_config.json yet (not trained)."""
    from valueharm.core.paths import model_dir

    return [m for m in study_adapters(params) if not (Path(root) / model_dir(m) / "adapter_config.json").exists()]


@click.command("serve")
@click.option("--run", "run_it", is_flag=True, help="Run the command here instead of printing it.")
def serve(run_it: bool) -> None:
    """Print (or --run) the `vllm serve` command that serves every study model for generate.backend openai."""
    import os
    import shutil

    from valueharm.core.params import load_params

    params = load_params()
    cmd = vllm_command(params)
    if not run_it:
        click.echo(shlex.join(cmd))
        return
    missing = missing_adapters(params)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise UserError(f"adapters not trained yet: {shown}", "run `dvc repro` for the train stages first")
    if shutil.which("vllm") is None:
        raise UserError(
            "vllm is not installed here", "pip install vllm on the GPU machine, or copy the printed command"
        )
    os.execvp(cmd[0], cmd)
