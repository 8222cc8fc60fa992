"""`valueharm shard`: train and evaluate many adapters in parallel through DVC itself.

No scheduler of ours: the shared stages run once, every shard of study.models becomes a queued
experiment whose targets are that shard's per-model stages, DVC's queue runs N of them at a time,
and a final `dvc repro` restores every per-model stage from the run-cache (the per-model stages'
commands, deps and params do not depend on which shard ran them) and runs the cross-model stages.
Machines that share a DVC remote do the same with `dvc push --run-cache` / `dvc pull --run-cache`.

DVC's queue gives its workers no per-worker environment, so `--gpus` prints a launcher instead:
one `dvc exp run --temp` per shard in the background, each with its own CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import shlex
import subprocess

import click

from valueharm.core.errors import UserError

SHARED_STAGES = ("validate", "base_model", "safety_tune", "profiles", "benchmarks", "judge_model")
PER_MODEL_STAGES = ("train", "align_check", "generate", "judge")


def shards(models: list[str], n: int) -> list[list[str]]:
    """study.models split round-robin into at most n non-empty shards (order kept within a shard)."""
    if n < 1:
        raise UserError(f"--workers must be at least 1, got {n}", "give a positive number of workers")
    groups = [models[i::n] for i in range(n)]
    return [g for g in groups if g]


def targets(shard: list[str]) -> list[str]:
    """The per-model stage targets of one shard; their upstream stages come along."""
    return [f"{stage}@{model}" for model in shard for stage in ("align_check", "judge")]


def plan(models: list[str], workers: int, gpus: bool = False) -> list[str]:
    """The exact shell commands, in order."""
    lines = ["dvc repro " + " ".join(SHARED_STAGES) + "   # shared stages once, before the shards"]
    groups = shards(models, workers)
    if gpus:
        for i, group in enumerate(groups):
            lines.append(
                f"CUDA_VISIBLE_DEVICES={i % workers} dvc exp run --temp -n shard-{i + 1} "
                + " ".join(targets(group))
                + " &"
            )
        lines.append("wait")
    else:
        for i, group in enumerate(groups):
            lines.append(f"dvc exp run --queue -n shard-{i + 1} " + " ".join(targets(group)))
        lines.append(f"dvc exp run --run-all -j {workers}   # or: dvc queue start -j {workers}; dvc queue status")
    lines.append("dvc repro   # every shard's stages come back from the run-cache; cross-model stages run")
    return lines


@click.command("shard")
@click.option("--workers", "-j", default=2, show_default=True, type=int, help="Parallel shards (one GPU each).")
@click.option("--gpus", is_flag=True, help="Print a launcher that pins one GPU per shard (CUDA_VISIBLE_DEVICES).")
@click.option("--run", is_flag=True, help="Run the commands instead of printing them (the queue variant only).")
def shard(workers: int, gpus: bool, run: bool) -> None:
    """Print (or run) the commands that run study.models in parallel shards through DVC's queue."""
    from valueharm.core.params import load_params

    models = list(load_params()["study"]["models"])
    lines = plan(models, workers, gpus)
    if not run:
        click.echo("\n".join(lines))
        return
    if gpus:
        raise UserError("--run does not launch the GPU variant", "run the printed commands (without --run) in a shell")
    for line in lines:
        command = shlex.split(line.split("#")[0])
        click.echo("$ " + " ".join(command))
        done = subprocess.run(command)
        if done.returncode != 0:
            raise UserError(f"`{' '.join(command)}` failed (exit {done.returncode})", "see DVC's output above")
