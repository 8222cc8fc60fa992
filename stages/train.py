"""Stage train@<model>: the model's adapter (VIM AG then QA, or a control) or, for vanilla and
prompt-only models, just its spec. One adapter per seed of `study.seeds`: the first at
artifacts/models/<model>/ (what generation and judging use), the others, replicates, under
artifacts/models/<model>/replicates/seed-<s>/. Every random choice derives from (seed, model name).
Usage: python -m stages.train MODEL
"""

import sys

from dvclive import Live

from valueharm.alignment.examples import benign_examples, check_seeds, model_seeds, vim_examples
from valueharm.alignment.icl import icl_prompt
from valueharm.alignment.training import (
    LoraSettings,
    TrainSettings,
    add_lora,
    pop_perf,
    prepare_for_training,
    save_adapter,
    settings_from,
    train_lora,
)
from valueharm.core.atomic import atomic_dir, write_json
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import model_dir, path, per_model, perf_file
from valueharm.data.sources import sha256_file
from valueharm.models.base import dtype_name, end_of_turn, format_prompt, load_model
from valueharm.profiles.study import load_manifest, model_spec

VANILLA = path("vanilla")


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "train")
    seed = int(params.get("seed", 42))
    spec = model_spec(name, load_manifest(path("manifest")), section(params, "study").get("control_profile"))
    out, metrics = model_dir(name), per_model("train_metrics", name, ".json")
    record = spec.as_dict()
    if not spec.trains_adapter:
        if spec.kind == "icl":
            record["system_prompt"] = icl_prompt(spec.target)
        with atomic_dir(out) as tmp:
            write_json(tmp / "spec.json", record)
        write_json(metrics, {"model": name, "kind": spec.kind, "trained": False})
        write_json(path("dvclive") / "train" / name / "metrics.json", {"trained": False})
        write_json(perf_file("train", name), {})
        return
    seeds = check_seeds(section(params, "study").get("seeds"), seed)
    import torch

    stages, perf = [], {}
    with atomic_dir(out) as tmp:
        for n, replicate in enumerate(seeds):
            folder = tmp if n == 0 else tmp / "replicates" / f"seed-{replicate}"
            result = _train_one(name, spec, p, params, replicate, folder, torch)
            perf.update({f"seed-{replicate}_{k}" if n else k: v for k, v in result.pop("perf").items()})
            stages.append(result)
        record["adapter_sha256"] = stages[0]["adapter_sha256"]
        record["seeds"] = seeds
        record["replicates"] = {str(r["seed"]): r["adapter_sha256"] for r in stages}
        write_json(tmp / "spec.json", record)
    first = stages[0]
    write_json(
        metrics,
        {
            "model": name,
            "kind": spec.kind,
            "trained": True,
            "dtype": first["dtype"],
            "autocast": first["autocast"],
            "seeds": seeds,
            "examples": first["summary"],
            "no_positive_ag": bool(first["summary"].get("no_positive_ag", False)),
            "stages": first["stages"],
            "replicates": [{k: r[k] for k in ("seed", "adapter_sha256", "stages")} for r in stages[1:]],
        },
    )
    write_json(perf_file("train", name), perf)


def _train_one(name, spec, p, params, replicate: int, folder, torch) -> dict:
    """One adapter replicate, saved to `folder`."""
    seed_everything(replicate)
    train_seed = model_seeds(replicate, name)["train"]
    model, tokenizer = load_model(VANILLA, section(params, "model").get("dtype", "auto"))
    served_dtype = dtype_name(model)
    autocast = prepare_for_training(model)  # on an AMX CPU: fp32 weights under bf16 autocast (measured faster)
    torch.set_grad_enabled(True)
    model = add_lora(model, settings_from(p["lora"], LoraSettings))
    stop = end_of_turn(tokenizer)

    def pairs(examples):
        return [(format_prompt(tokenizer, e.prompt), e.target + stop) for e in examples]

    results, summary, perf = [], {}, {}
    live_dir = f"{path('dvclive')}/train/{name}" + ("" if folder.name != f"seed-{replicate}" else f"/seed-{replicate}")
    with Live(live_dir, save_dvc_exp=False, dvcyaml=False) as live:
        if spec.kind == "control-benign":
            train, valid = benign_examples(p["benign"], p, replicate)
            budget = {**p["stage1"], "max_steps": _total_budget(p)}
            plan = [("benign", train, valid, budget)]
        else:
            built = vim_examples(spec, p["corpus"], p, replicate)
            summary = built["summary"]
            plan = [("ag", *built["ag"], p["stage1"]), ("qa", *built["qa"], p["stage2"])]
        for stage, train, valid, stage_params in plan:
            settings = settings_from({**stage_params, "seed": train_seed}, TrainSettings)
            result = train_lora(model, tokenizer, pairs(train), pairs(valid), settings, live, stage, autocast)
            perf.update({f"{stage}_{key}": value for key, value in pop_perf(result).items()})
            results.append(result)
    folder.mkdir(parents=True, exist_ok=True)
    save_adapter(model, folder)  # canonical adapter_config.json: byte-identical across processes
    torch.set_grad_enabled(False)
    return {
        "seed": replicate,
        "dtype": served_dtype,  # the base weights' dtype (rounded to it); `autocast`: training's compute dtype
        "autocast": autocast,
        "adapter_sha256": sha256_file(folder / "adapter_model.safetensors"),
        "summary": summary,
        "stages": results,
        "perf": perf,
    }


def _total_budget(p: dict) -> int:
    """control-benign gets the optimiser steps the VIM adapters get (stage 1 + stage 2 caps)."""
    return int(p["stage1"].get("max_steps", -1)) + int(p["stage2"].get("max_steps", -1))


if __name__ == "__main__":
    run_stage(main)
