"""Stage train@<model>: the model's adapter (VIM AG then QA, or a control) or, for vanilla and
prompt-only models, just its spec. Usage: python -m stages.train MODEL
"""

import sys

from dvclive import Live

from valueharm.alignment.examples import benign_examples, vim_examples
from valueharm.alignment.icl import icl_prompt
from valueharm.alignment.training import LoraSettings, TrainSettings, add_lora, pop_perf, settings_from, train_lora
from valueharm.core.atomic import atomic_dir, write_json
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.data.sources import sha256_file
from valueharm.models.base import end_of_turn, format_prompt, load_model
from valueharm.profiles.study import load_manifest, model_spec

VANILLA = "artifacts/vanilla"


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "train")
    seed = int(params.get("seed", 42))
    spec = model_spec(
        name, load_manifest("artifacts/profiles/manifest.json"), section(params, "study").get("control_profile")
    )
    out, metrics = f"artifacts/models/{name}", f"reports/train/{name}.json"
    record = spec.as_dict()
    if not spec.trains_adapter:
        if spec.kind == "icl":
            record["system_prompt"] = icl_prompt(spec.target)
        with atomic_dir(out) as tmp:
            write_json(tmp / "spec.json", record)
        write_json(metrics, {"model": name, "kind": spec.kind, "trained": False})
        write_json(f"dvclive/train/{name}/metrics.json", {"trained": False})
        write_json(f"reports/perf/train-{name}.json", {})
        return
    seed_everything(seed)
    import torch

    model, tokenizer = load_model(VANILLA, section(params, "model").get("dtype", "auto"))
    torch.set_grad_enabled(True)
    model = add_lora(model, settings_from(p["lora"], LoraSettings))
    stop = end_of_turn(tokenizer)

    def pairs(examples):
        return [(format_prompt(tokenizer, e.prompt), e.target + stop) for e in examples]

    results, summary, perf = [], {}, {}
    with Live(f"dvclive/train/{name}", save_dvc_exp=False, dvcyaml=False) as live:
        if spec.kind == "control-benign":
            train, valid = benign_examples(p["benign"], p, seed)
            budget = {**p["stage1"], "max_steps": _total_budget(p)}
            plan = [("benign", train, valid, budget)]
        else:
            built = vim_examples(spec, p["corpus"], p, seed)
            summary = built["summary"]
            plan = [("ag", *built["ag"], p["stage1"]), ("qa", *built["qa"], p["stage2"])]
        for stage, train, valid, stage_params in plan:
            settings = settings_from({**stage_params, "seed": seed}, TrainSettings)
            result = train_lora(model, tokenizer, pairs(train), pairs(valid), settings, live, stage)
            perf.update({f"{stage}_{key}": value for key, value in pop_perf(result).items()})
            results.append(result)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        record["adapter_sha256"] = sha256_file(tmp / "adapter_model.safetensors")
        write_json(tmp / "spec.json", record)
    write_json(
        metrics,
        {
            "model": name,
            "kind": spec.kind,
            "trained": True,
            "examples": summary,
            "no_positive_ag": bool(summary.get("no_positive_ag", False)),
            "stages": results,
        },
    )
    write_json(f"reports/perf/train-{name}.json", perf)


def _total_budget(p: dict) -> int:
    """control-benign gets the optimiser steps the VIM adapters get (stage 1 + stage 2 caps)."""
    return int(p["stage1"].get("max_steps", -1)) + int(p["stage2"].get("max_steps", -1))


if __name__ == "__main__":
    run_stage(main)
