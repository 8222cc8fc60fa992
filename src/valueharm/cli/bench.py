"""`valueharm bench`: this machine's limits and the pipeline's throughput, as one JSON document.

Measures, in one run: the matmul limit (GFLOP/s, fp32 and bf16); LoRA training, batched greedy
generation and likelihood scoring tokens/s for `float32` and for what `auto` resolves to here;
each one's model FLOP utilisation (MFU) against the limit of its dtype; useful training tokens/s
(prompt + target, no padding) for every `train.batching` mode; the per-stage fixed costs found in
reports/perf/; the CPU flags torch saw. Figures are measurements of this run, never asserted.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import click

from valueharm.core.errors import UserError

DEFAULT_MODELS = ("artifacts/vanilla", "artifacts/base_model")
FLAG_NAMES = ("amx_bf16", "amx_tile", "amx_int8", "amx_fp16", "avx512_bf16", "avx512_f", "avx512_vnni", "avx2", "fma3")


def _pick_model(path: str | None) -> Path:
    if path:
        return Path(path)
    for candidate in DEFAULT_MODELS:
        if Path(candidate).exists():
            return Path(candidate)
    raise UserError("no model to benchmark (artifacts/vanilla and artifacts/base_model are missing)",
                    "run `dvc repro base_model` first, or pass --model DIR")  # fmt: skip


def _flags() -> dict[str, Any]:
    from valueharm.models.base import cpu_capabilities

    caps = cpu_capabilities()
    return {
        "cpu": caps.get("cpu_name"),
        "dispatch": caps.get("dispatch"),
        "cores": caps.get("num_physical_cores"),
        "flags": [name for name in FLAG_NAMES if caps.get(name)],
    }


def _text_ids(tokenizer, n_tokens: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    words = "value harm model answer question people care about safety freedom tradition power".split()
    ids: list[int] = []
    while len(ids) < n_tokens:
        ids += tokenizer(" ".join(rng.choice(words) for _ in range(64)), add_special_tokens=False)["input_ids"]
    return ids[:n_tokens]


def _time(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_train(model, tokenizer, batch: int, length: int, steps: int, flops) -> dict[str, Any]:
    """LoRA r8 on q/v (all layers), one optimiser step per call on batch x length tokens, loss on the last half,
    in the precision stage train uses for the model's dtype (on a CPU: fp32 weights, autocast; the model is
    left upcast, so measure it last)."""
    import torch

    from valueharm.alignment.training import LoraSettings, add_lora, autocast_context, prepare_for_training, target_loss

    autocast = prepare_for_training(model)
    with torch.enable_grad():
        peft_model = add_lora(model, LoraSettings(r=8, alpha=32, dropout=0.0, target_modules=["q_proj", "v_proj"]))
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(params, lr=1e-4)
        ids = torch.tensor([_text_ids(tokenizer, length, seed) for seed in range(batch)])
        labels = ids.clone()
        labels[:, : length // 2] = -100
        mask = torch.ones_like(ids)
        peft_model.train()

        def step() -> None:
            with autocast_context(peft_model, autocast):
                loss = target_loss(peft_model, ids, labels, mask)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)

        seconds = _time(step, steps)
    peft_model.eval()
    peft_model.unload()  # the base model again, for the next measurement
    tokens = batch * length
    # forward over every layer (LM head on the target half), backward through every layer for
    # activation gradients (about the forward's matmuls again; LoRA weight gradients are negligible)
    per_token = 2 * (flops["layer"] * flops["layers"]) + 2 * flops["lm_head"] * 0.5
    return {
        "tokens_per_second": tokens / seconds,
        "model_gflops": per_token * tokens / seconds / 1e9,
        "autocast": autocast,
    }


def bench_generate(model, tokenizer, batch: int, new_tokens: int, flops) -> dict[str, float]:
    """Greedy batched generation of `new_tokens` for `batch` chat prompts (what stage generate runs)."""
    from valueharm.generation.hf import Sampling, generate_texts
    from valueharm.models.base import format_prompt

    topics = ["a fruit", "a colour", "a planet", "a tree", "a city", "an animal", "a metal", "a sport"]
    texts = [format_prompt(tokenizer, f"Describe {topics[i % 8]} in one sentence, example {i}.") for i in range(batch)]
    sampling = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=new_tokens)
    counts: list[int] = []

    def run() -> None:
        counts[:] = [n for _, n in generate_texts(model, tokenizer, texts, sampling, batch_size=batch)]

    seconds = _time(run, 1)
    tokens = sum(counts)
    per_token = flops["layer"] * flops["layers"] + flops["lm_head"]
    return {"tokens_per_second": tokens / seconds, "model_gflops": per_token * tokens / seconds / 1e9}


def bench_score(model, tokenizer, batch: int, length: int, repeats: int, flops) -> dict[str, float]:
    """One no-grad forward over batch x length tokens with full logits (prefill, likelihood scoring)."""
    import torch

    ids = torch.tensor([_text_ids(tokenizer, length, 100 + seed) for seed in range(batch)])

    def run() -> None:
        with torch.no_grad():
            torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)

    seconds = _time(run, repeats)
    tokens = batch * length
    per_token = flops["layer"] * flops["layers"] + flops["lm_head"]
    return {"tokens_per_second": tokens / seconds, "model_gflops": per_token * tokens / seconds / 1e9}


def bench_batching(model_dir: Path, n_examples: int, batch: int, steps: int) -> dict[str, dict[str, float]]:
    """Useful training tokens/s (no padding counted) per `train.batching` mode, on examples of varied length."""
    import torch

    from valueharm.alignment.training import BATCHING, LoraSettings, TrainSettings, add_lora, train_lora
    from valueharm.models.base import format_prompt, load_model

    rng = random.Random(0)
    out: dict[str, dict[str, float]] = {}
    for mode in BATCHING:
        model, tokenizer = load_model(model_dir, "float32")
        with torch.enable_grad():
            model = add_lora(model, LoraSettings(r=8, alpha=32, dropout=0.0, target_modules=["q_proj", "v_proj"]))
            rng.seed(0)
            pairs = [
                (format_prompt(tokenizer, "Argue for this. " + " ".join(["people value care"] * rng.randint(1, 25))),
                 "I agree, because" + " it matters" * rng.randint(1, 6) + ".<|im_end|>")
                for _ in range(n_examples)
            ]  # fmt: skip
            settings = TrainSettings(lr=1e-4, epochs=1, batch_size=batch, max_steps=steps, max_length=128, seed=0,
                                     batching=mode)  # fmt: skip
            result = train_lora(model, tokenizer, pairs, [], settings, stage=f"bench-{mode}")
        out[mode] = {
            "useful_tokens_per_second": result["tokens_per_second"],
            "padding_fraction": result["padding_fraction"],
        }
    return out


def stage_overheads(perf_dir: str | Path = "reports/perf") -> dict[str, dict[str, float]]:
    """The fixed-cost records the stages wrote (imports, model load), by stage."""
    found: dict[str, dict[str, float]] = {}
    for path in sorted(Path(perf_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "fixed_s" in record:
            found[path.stem] = {k: record[k] for k in ("imports_s", "model_load_s", "fixed_s") if k in record}
    return found


def _note(message: str) -> None:
    """Progress on stderr (stdout is the JSON)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_bench(model_dir: str | Path | None = None, quick: bool = False) -> dict[str, Any]:
    """Every measurement of `valueharm bench`; `quick` shrinks sizes (for the test suite)."""
    import torch

    from valueharm.core.perf import decoder_flops_per_token, matmul_gflops, mfu
    from valueharm.models.base import load_model, pick_dtype

    started = time.perf_counter()
    folder = _pick_model(str(model_dir) if model_dir else None)
    sizes = (
        {"train": (2, 32, 1), "gen": (4, 4), "score": (2, 32, 1), "mm": 256, "batching": (8, 4, 1)}
        if quick
        else {"train": (8, 128, 2), "gen": (64, 16), "score": (32, 128, 2), "mm": 1024, "batching": (48, 8, 4)}
    )
    _note(f"matmul limit ({sizes['mm']}^2)")
    limits = {name: matmul_gflops(name, n=sizes["mm"]) for name in ("float32", "bfloat16")}
    auto = str(pick_dtype("auto", "cpu")).removeprefix("torch.")
    results: dict[str, Any] = {}
    for label, dtype in (("float32", "float32"), ("auto", auto)):
        if label == "auto" and dtype == "float32":
            results["auto"] = {"dtype": "float32", "same_as": "float32"}
            continue
        _note(f"{label} ({dtype}): load, train, generate, score")
        model, tokenizer = load_model(folder, dtype)
        limit = limits[dtype] if dtype in limits else limits["float32"]
        row: dict[str, Any] = {"dtype": dtype}
        flops = decoder_flops_per_token(model.config, sizes["train"][1])
        row["generate"] = bench_generate(model, tokenizer, *sizes["gen"], decoder_flops_per_token(model.config, 64))
        row["score"] = bench_score(model, tokenizer, *sizes["score"], decoder_flops_per_token(model.config, 64))
        row["train"] = bench_train(model, tokenizer, *sizes["train"], flops)  # last: it may upcast the weights
        for part in ("train", "generate", "score"):
            row[part]["mfu"] = mfu(row[part]["model_gflops"] * 1e9, limit)
        results[label] = row
        del model
    auto_row = results["auto"] if "same_as" not in results["auto"] else results["float32"]
    ratios = {
        part: auto_row[part]["tokens_per_second"] / results["float32"][part]["tokens_per_second"]
        for part in ("train", "generate", "score")
    }
    torch.set_grad_enabled(False)
    return {
        "machine": _flags(),
        "threads": torch.get_num_threads(),
        "model": str(folder),
        "auto_dtype": auto,
        "matmul_gflops": limits,
        "sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in sizes.items()},
        "throughput": results,
        "auto_over_float32": ratios,
        "train_batching": _note("train batching modes") or bench_batching(folder, *sizes["batching"]),
        "stage_overhead_s": stage_overheads(),
        "seconds": time.perf_counter() - started,
    }


@click.command("bench")
@click.option("--model", "model_dir", default=None, metavar="DIR", help="Model folder [default: artifacts/vanilla].")
@click.option("--quick", is_flag=True, help="Smaller sizes (seconds, for tests); figures are noisier.")
@click.option("--out", default=None, metavar="FILE", help="Also write the JSON to FILE.")
def bench(model_dir: str | None, quick: bool, out: str | None) -> None:
    """Measure this machine's matmul limit and the pipeline's tokens/s and MFU; print JSON."""
    report = run_bench(model_dir, quick)
    text = json.dumps(report, indent=2, sort_keys=True)
    if out:
        from valueharm.core.atomic import write_text

        write_text(out, text + "\n")
    click.echo(text)
