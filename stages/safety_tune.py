"""Stage safety_tune: LoRA on authored refusal/helpful pairs, merged -> artifacts/vanilla.

With `safety_tune.enabled: false` (the paper preset) vanilla is the base model itself, by reference.
Its refusal check generates in-process whatever `generate.backend` says: the weights it measures
(before and after merging) exist only inside this stage until it writes them, so no server has them.
"""

from dvclive import Live

from valueharm.alignment.training import (
    LoraSettings,
    TrainSettings,
    add_lora,
    pop_perf,
    prepare_for_training,
    settings_from,
    train_lora,
)
from valueharm.core.atomic import atomic_dir, write_json
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import path, perf_file, report_file
from valueharm.generation.hf import Sampling
from valueharm.models.base import REF_FILE, dtype_name, load_model
from valueharm.models.safety import balanced_limit, load_pairs, refusal_metrics, split_pairs, to_text_pairs

BASE, OUT, METRICS = path("base_model"), path("vanilla"), report_file("safety_tune.json")


def main() -> None:
    params = load_params()
    p = section(params, "safety_tune")
    dtype = section(params, "model").get("dtype", "auto")
    if not p.get("enabled", True):
        with atomic_dir(OUT) as tmp:
            write_json(tmp / REF_FILE, {"source": "alias", "path": "../base_model", "why": "safety_tune disabled"})
        write_json(METRICS, {"enabled": False})
        return
    seed = int(p.get("seed", params.get("seed", 42)))
    seed_everything(seed)
    rows = load_pairs(p["pairs"])
    train, valid, heldout = split_pairs(rows, float(p.get("valid_fraction", 0.1)), seed)
    heldout = balanced_limit(heldout, p["eval"].get("limit"))
    valid = balanced_limit(valid, p.get("valid_limit"))  # validation pairs (CPU budget; null = all)
    sampling = Sampling(**p["eval"]["sampling"])
    model, tokenizer = load_model(BASE, dtype)
    before = refusal_metrics(model, tokenizer, heldout, sampling, p["eval"]["batch_size"], seed)
    import torch

    served = model.dtype
    autocast = prepare_for_training(model)  # on an AMX CPU: fp32 weights under bf16 autocast (measured faster)
    torch.set_grad_enabled(True)
    model = add_lora(model, settings_from(p["lora"], LoraSettings))
    settings = settings_from({**p["train"], "seed": seed}, TrainSettings)
    with Live(str(path("dvclive") / "safety_tune"), save_dvc_exp=False, dvcyaml=False) as live:
        result = train_lora(
            model,
            tokenizer,
            to_text_pairs(tokenizer, train),
            to_text_pairs(tokenizer, valid),
            settings,
            live,
            "safety",
            autocast,
        )
    merged = model.merge_and_unload().to(served)  # served, evaluated and saved in model.dtype
    torch.set_grad_enabled(False)
    after = refusal_metrics(merged, tokenizer, heldout, sampling, p["eval"]["batch_size"], seed)
    with atomic_dir(OUT) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    perf = pop_perf(result)
    write_json(
        METRICS,
        {
            "enabled": True,
            "dtype": dtype_name(merged),
            "autocast": autocast,
            "n_train": len(train),
            "n_valid": len(valid),
            "training": result,
            "before": before,
            "after": after,
            "refusal_rate_harmful": after["refusal_rate_harmful"],
            "over_refusal_rate_benign": after["over_refusal_rate_benign"],
        },
    )
    write_json(perf_file("safety_tune"), perf)


if __name__ == "__main__":
    run_stage(main)
