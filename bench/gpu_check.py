"""GPU check: training and generation throughput of the study's recipe on one device, no weights needed.

    python bench/gpu_check.py                  # one GPU: a randomly initialised Llama-shaped ~1.1B model
    python bench/gpu_check.py --tiny           # CPU smoke run of the same code paths (seconds)

Measures, and prints as one table (and `--out` JSON):
1. train: peft LoRA (r 8, q/v, as the study) on bf16 weights, batch 16 x 512 tokens, AdamW;
   tokens/s and MFU = 4 * N * tokens/s / peak (LoRA: forward 2N plus the input-gradient half of
   the backward 2N; frozen weights get no weight gradients), peak = the device's dense bf16 FLOP/s.
2. generate (hf): greedy `generate`, 64-token prompts, 128 new tokens, batch 1 and 128, eager
   (dynamic cache) and, on CUDA, a static cache, with which transformers compiles the decode step
   (torch.compile; `--no-compile` to skip).
3. mixed adapters: 10 LoRA adapters in one peft model, batch 128 with every row on a different
   adapter in turn (`adapter_names=`), against the same batch on one adapter.

Weights are random (they cannot travel to the GPU machine), which does not change the cost of a
step: generation runs a fixed number of new tokens (EOS is disabled). Budget: under 8 minutes on
an H100/H200-class GPU. Nothing here reads the pipeline's data or params.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}

FULL = {
    "model": dict(
        hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4
    ),
    "train": dict(batch=16, seq=512, steps=10, warmup=3),
    "gen": dict(prompt=64, new=128, batches=(1, 128)),
    "mixed": dict(adapters=10, batch=128, new=64),
    "vocab": 32000,
    "repeats": 2,
}
TINY = {
    "model": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
    "train": dict(batch=2, seq=32, steps=2, warmup=1),
    "gen": dict(prompt=8, new=4, batches=(1, 4)),
    "mixed": dict(adapters=3, batch=6, new=4),
    "vocab": 512,
    "repeats": 1,
}
VOCAB = 32000  # Llama-2's; --tiny uses a small one
REPEATS = 2  # timed generate calls per setting, after one warm-up call


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def build_model(shape: dict[str, int], device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=2048, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.to(dtype)
    model.generation_config.eos_token_id = None  # fixed-length generation: random weights may emit EOS
    model.generation_config.pad_token_id = 0
    return model


def peak_flops(device: str, override_tflops: float | None) -> float | None:
    import torch

    if override_tflops:
        return override_tflops * 1e12
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def bench_train(model, cfg: dict[str, int], device: str, peak: float | None) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    n_params = sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
    )
    peft_model.train()
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=2e-5)
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, VOCAB, (cfg["batch"], cfg["seq"]), generator=g).to(device)
    with torch.enable_grad():
        for step in range(cfg["warmup"] + cfg["steps"]):
            if step == cfg["warmup"]:
                _sync(device)
                start = time.perf_counter()
            loss = peft_model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        _sync(device)
    seconds = time.perf_counter() - start
    tokens = cfg["batch"] * cfg["seq"] * cfg["steps"]
    tps = tokens / seconds
    mfu = 4 * n_params * tps / peak if peak else None
    peft_model.eval()
    base = peft_model.unload()  # the plain model again, for the generation checks
    return {
        "params": n_params,
        "batch": cfg["batch"],
        "seq": cfg["seq"],
        "tokens_per_second": tps,
        "mfu": mfu,
        "loss": float(loss),
        "model": base,
    }


def _generate_tps(model, batch: int, prompt: int, new: int, device: str, **kwargs) -> float:
    import torch

    g = torch.Generator(device="cpu").manual_seed(1)
    ids = torch.randint(1, VOCAB, (batch, prompt), generator=g).to(device)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, **kwargs
        )
        _sync(device)
        start = time.perf_counter()
        for _ in range(REPEATS):
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, do_sample=False, **kwargs
            )
        _sync(device)
    seconds = time.perf_counter() - start
    generated = (out.shape[1] - prompt) * batch * REPEATS
    return generated / seconds


def bench_generate(model, cfg: dict[str, Any], device: str, compile_: bool) -> dict[str, Any]:
    model.eval()
    out: dict[str, Any] = {}
    for batch in cfg["batches"]:
        out[f"eager_bs{batch}"] = _generate_tps(model, batch, cfg["prompt"], cfg["new"], device)
    if compile_:
        # A static KV cache: on CUDA, transformers' generate then compiles the decode step itself
        # (torch.compile, CUDA graphs), which removes the per-step launch overhead of eager decoding.
        model.generation_config.cache_implementation = "static"
        for batch in cfg["batches"]:
            out[f"static_compiled_bs{batch}"] = _generate_tps(model, batch, cfg["prompt"], cfg["new"], device)
        model.generation_config.cache_implementation = None
    return out


def bench_mixed(model, cfg: dict[str, int], device: str, prompt: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    names = [f"a{i}" for i in range(cfg["adapters"])]
    peft_model = get_peft_model(model, lora, adapter_name=names[0])
    for name in names[1:]:
        torch.manual_seed(len(name))
        peft_model.add_adapter(name, lora)
    peft_model.to(device).eval()
    batch, new = cfg["batch"], cfg["new"]
    mixed = [names[i % len(names)] for i in range(batch)]
    single = _generate_tps(peft_model, batch, prompt, new, device, adapter_names=[names[0]] * batch)
    mixed_tps = _generate_tps(peft_model, batch, prompt, new, device, adapter_names=mixed)
    return {
        "adapters": len(names),
        "batch": batch,
        "single_adapter_tokens_per_second": single,
        "mixed_adapters_tokens_per_second": mixed_tps,
        "mixed_over_single": mixed_tps / single if single else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model and batches (CPU smoke test)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip static cache + torch.compile")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device's dense bf16 peak, for MFU")
    parser.add_argument("--out", default="reports/perf/gpu_check.json", help="JSON results ('' to skip)")
    args = parser.parse_args(argv)

    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device; use --tiny on CPU", file=sys.stderr)
        return 2
    if device == "cpu" and not args.tiny:
        print("error: no GPU here: the full check needs one; run with --tiny for the CPU smoke run", file=sys.stderr)
        return 2
    plan = TINY if args.tiny else FULL
    global VOCAB, REPEATS
    VOCAB, REPEATS = plan["vocab"], plan["repeats"]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.set_grad_enabled(False)
    started = time.perf_counter()
    model = build_model(plan["model"], device, dtype)
    train = bench_train(model, plan["train"], device, peak_flops(device, args.peak_tflops))
    model = train.pop("model")
    gen = bench_generate(model, plan["gen"], device, compile_=device == "cuda" and not args.no_compile)
    mixed = bench_mixed(model, plan["mixed"], device, plan["gen"]["prompt"])
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "tiny": args.tiny,
        "dtype": str(dtype).replace("torch.", ""),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "train": train,
        "generate": gen,
        "mixed": mixed,
        "seconds": time.perf_counter() - started,
    }
    import peft
    import transformers

    result["versions"].update(transformers=transformers.__version__, peft=peft.__version__)
    lines = [
        f"device {result['device']} ({result['dtype']}), model {train['params'] / 1e9:.2f}B params",
        f"train LoRA bs{train['batch']}x{train['seq']}: {train['tokens_per_second']:,.0f} tok/s"
        + (f", MFU {100 * train['mfu']:.1f}%" if train["mfu"] is not None else ", MFU n/a (no known peak)"),
    ]
    lines += [f"generate {k}: {v:,.0f} tok/s" for k, v in gen.items()]
    lines.append(
        f"mixed {mixed['adapters']} adapters bs{mixed['batch']}: {mixed['mixed_adapters_tokens_per_second']:,.0f} tok/s"
        f" vs one adapter {mixed['single_adapter_tokens_per_second']:,.0f} tok/s"
        f" ({100 * mixed['mixed_over_single']:.0f}%)"
    )
    lines.append(f"total {result['seconds']:.0f} s")
    print("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(result, indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x))
            + "\n"
        )
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
