"""GPU check: training and generation throughput of the study's recipe on one device, no weights needed.

    python bench/gpu_check.py                  # one GPU: a randomly initialised Llama-shaped ~1.1B model
    python bench/gpu_check.py --tiny           # CPU smoke run of the same code paths (seconds)

Measures, and prints as one table (and `--out` JSON, rewritten after every section, so a run cut
short keeps what it measured):
1. train: peft LoRA (r 8, q/v, as the study) on bf16 weights, batch 16 x 512 tokens, AdamW; eager
   and, on CUDA, under torch.compile. Tokens/s and MFU = model FLOP/s / the device's dense bf16
   peak, model FLOPs from `valueharm.core.perf.training_flops_per_token` (forward plus the
   backward's input gradients, attention included, no weight gradients for frozen weights: about
   4N per token); `mfu_4n` counts 4 x all parameters per token (the anchor's convention).
2. pipeline: the project's own code on the same model, `alignment.training.train_lora` (precision
   from `prepare_for_training`, the tokens/s and MFU the train stage writes to reports/perf) and
   `generation.hf.generate_texts` at batch 128, with a word-level tokenizer built here.
3. generate (hf): greedy `generate`, 64-token prompts, 128 new tokens, batch 1 and 128, eager
   (dynamic cache) and, on CUDA and last, a static cache, with which transformers compiles the
   decode step (torch.compile; `--no-compile` to skip).
4. mixed adapters: 10 LoRA adapters in one peft model, batch 128 with every row on a different
   adapter in turn (`adapter_names=`), against the same batch on one adapter; and the same 10
   adapters as stacked weights gathered per row (one pair of batched matmuls per layer, the
   punica/vLLM approach), with the share of its tokens that equal peft's mixed-batch tokens.

Weights are random (they cannot travel to the GPU machine), which does not change the cost of a
step: generation runs a fixed number of new tokens (EOS is disabled). Budget: under 8 minutes on
an H100/H200-class GPU. Nothing here reads the pipeline's data or params.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the project's code, uninstalled too

from valueharm.core.perf import CUDA_PEAK_BF16_TFLOPS, training_flops_per_token  # noqa: E402

FULL = {
    "model": dict(
        hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4
    ),
    "train": dict(batch=16, seq=512, steps=10, warmup=3),
    "gen": dict(prompt=64, new=128, batches=(1, 128)),
    "mixed": dict(adapters=10, batch=128, new=64),
    "pipeline": dict(batch=16, prompt_words=448, target_words=48, steps=10, gen_batch=128, gen_prompt=64, new=128),
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
    "pipeline": dict(batch=2, prompt_words=20, target_words=6, steps=2, gen_batch=4, gen_prompt=8, new=4),
    "vocab": 512,
    "repeats": 1,
}
SECTIONS = ("train", "pipeline", "generate", "mixed", "generate_compiled", "train_compiled")
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
    for key, tflops in CUDA_PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def bench_train(model, cfg: dict[str, int], device: str, peak: float | None, compiled: bool = False) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    n_params = sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=["q_proj", "v_proj"])
    )
    peft_model.train()
    step_model = torch.compile(peft_model) if compiled else peft_model
    first_step_s = None
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=2e-5)
    g = torch.Generator(device="cpu").manual_seed(0)
    ids = torch.randint(0, VOCAB, (cfg["batch"], cfg["seq"]), generator=g).to(device)
    with torch.enable_grad():
        for step in range(cfg["warmup"] + cfg["steps"]):
            if step == cfg["warmup"]:
                _sync(device)
                start = time.perf_counter()
            t0 = time.perf_counter()
            loss = step_model(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step == 0:
                _sync(device)
                first_step_s = time.perf_counter() - t0  # includes compilation when compiled
        _sync(device)
    seconds = time.perf_counter() - start
    tokens = cfg["batch"] * cfg["seq"] * cfg["steps"]
    tps = tokens / seconds
    flops_per_token = training_flops_per_token(model.config, cfg["seq"] // 2)  # causal: half the keys
    peft_model.eval()
    base = peft_model.unload()  # the plain model again, for the next checks
    return {
        "params": n_params,
        "compiled": compiled,
        "batch": cfg["batch"],
        "seq": cfg["seq"],
        "tokens_per_second": tps,
        "model_tflops_per_second": flops_per_token * tps / 1e12,
        "mfu": flops_per_token * tps / peak if peak else None,
        "mfu_4n": 4 * n_params * tps / peak if peak else None,
        "first_step_seconds": first_step_s,
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
    _LAST_TOKENS[0] = out[:, prompt:].cpu()
    return generated / seconds


_LAST_TOKENS: list[Any] = [None]  # the last timed call's new tokens (for the gathered-LoRA agreement)


def bench_generate(model, cfg: dict[str, Any], device: str, compile_: bool = False) -> dict[str, Any]:
    model.eval()
    out: dict[str, Any] = {}
    for batch in cfg["batches"]:
        out[f"eager_bs{batch}"] = _generate_tps(model, batch, cfg["prompt"], cfg["new"], device)
    if compile_:
        out.update(bench_generate_static(model, cfg, device))
    return out


def bench_generate_static(model, cfg: dict[str, Any], device: str) -> dict[str, Any]:
    """A static KV cache: on CUDA, transformers' generate then compiles the decode step itself
    (torch.compile, CUDA graphs), which removes the per-step launch overhead of eager decoding."""
    model.eval()
    out: dict[str, Any] = {}
    model.generation_config.cache_implementation = "static"
    try:
        for batch in sorted(cfg["batches"], reverse=True):  # bs128 first: the goal's figure
            out[f"static_compiled_bs{batch}"] = _generate_tps(model, batch, cfg["prompt"], cfg["new"], device)
    finally:
        model.generation_config.cache_implementation = None
    return out


def bench_mixed(model, cfg: dict[str, int], device: str, prompt: int) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    names = [f"a{i}" for i in range(cfg["adapters"])]
    peft_model = get_peft_model(model, lora, adapter_name=names[0])
    for index, name in enumerate(names[1:], start=1):
        torch.manual_seed(index)  # a different random adapter each
        peft_model.add_adapter(name, lora)
    peft_model.to(device).eval()
    batch, new = cfg["batch"], cfg["new"]
    mixed = [names[i % len(names)] for i in range(batch)]
    single = _generate_tps(peft_model, batch, prompt, new, device, adapter_names=[names[0]] * batch)
    mixed_tps = _generate_tps(peft_model, batch, prompt, new, device, adapter_names=mixed)
    peft_tokens = _LAST_TOKENS[0]
    g = torch.Generator(device="cpu").manual_seed(1)  # the prompts _generate_tps used
    ids = torch.randint(1, VOCAB, (batch, prompt), generator=g).to(device)
    with torch.no_grad():
        peft_logits = peft_model(input_ids=ids, adapter_names=mixed).logits[:, -1].float()
    gathered = GatheredLoRA.replace(peft_model, names)
    gathered.set_rows(torch.tensor([i % len(names) for i in range(batch)], device=device))
    with torch.no_grad():
        gathered_logits = gathered.model(input_ids=ids).logits[:, -1].float()
    gathered_tps = _generate_tps(gathered.model, batch, prompt, new, device)
    agree = float((_LAST_TOKENS[0] == peft_tokens).float().mean())
    return {
        "adapters": len(names),
        "batch": batch,
        "single_adapter_tokens_per_second": single,
        "mixed_adapters_tokens_per_second": mixed_tps,
        "mixed_over_single": mixed_tps / single if single else None,
        "gathered_mixed_tokens_per_second": gathered_tps,
        "gathered_over_single": gathered_tps / single if single else None,
        # greedy tokens equal to peft's mixed batch: random weights give near-flat logits, so in bf16 one
        # rounding flips an argmax and the rest of that row diverges; the logits show the layers agree
        "gathered_tokens_equal_peft": agree,
        "gathered_first_token_equal_peft": float((peft_logits.argmax(-1) == gathered_logits.argmax(-1)).float().mean()),
        "gathered_logits_max_abs_diff": float((peft_logits - gathered_logits).abs().max()),
        "logits_abs_max": float(peft_logits.abs().max()),
    }


class GatheredLoRA:
    """Many LoRA adapters in one batch as stacked weights indexed per row: y = W x + s * B[a] (A[a] x).

    peft's `adapter_names=` runs every adapter's matmuls on its sub-batch in a Python loop (10 adapters:
    10 small matmul pairs per layer and step); here each adapted layer gathers its rows' A and B once
    per batch and runs two batched matmuls, whatever the number of adapters (the punica / vLLM idea).
    """

    def __init__(self, model, layers: dict[str, Any]) -> None:
        self.model, self.layers = model, layers

    @classmethod
    def replace(cls, peft_model, names: list[str]) -> GatheredLoRA:
        import torch

        stacks = {}
        for path, module in peft_model.named_modules():
            if hasattr(module, "base_layer") and hasattr(module, "lora_A") and names[0] in module.lora_A:
                a = torch.stack([module.lora_A[n].weight for n in names]).detach()
                b = torch.stack([module.lora_B[n].weight for n in names]).detach()
                stacks[path.removeprefix("base_model.model.")] = (a, b, float(module.scaling[names[0]]))
        model = peft_model.unload()
        layers = {}
        for path, (a, b, scale) in stacks.items():
            parent, _, leaf = path.rpartition(".")
            holder = model.get_submodule(parent)
            layer = _GatheredLinear(getattr(holder, leaf), a, b, scale)
            setattr(holder, leaf, layer)
            layers[path] = layer
        return cls(model, layers)

    def set_rows(self, adapter_of_row) -> None:
        for layer in self.layers.values():
            layer.set_rows(adapter_of_row)


@functools.cache
def _gathered_linear_class():
    import torch

    class GatheredLinear(torch.nn.Module):
        def __init__(self, base, a, b, scale: float) -> None:
            super().__init__()
            self.base, self.a, self.b, self.scale = base, a, b, scale
            self.a_rows = self.b_rows = None

        def set_rows(self, adapter_of_row) -> None:
            self.a_rows = self.a[adapter_of_row].transpose(1, 2)  # (rows, in, r)
            self.b_rows = (self.b[adapter_of_row] * self.scale).transpose(1, 2)  # (rows, r, out)

        def forward(self, x):
            low = torch.bmm(x.to(self.a_rows.dtype), self.a_rows)
            return (self.base(x) + torch.bmm(low, self.b_rows)).to(x.dtype)  # peft's order: add, then round

    return GatheredLinear


def _GatheredLinear(base, a, b, scale):  # noqa: N802 - a class built on first use (torch imported lazily)
    return _gathered_linear_class()(base, a, b, scale)


def word_tokenizer(vocab_size: int):
    """A word-level fast tokenizer over `w0 .. wN` (no files needed), with pad/eos like the study's models."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{f"w{i}": i + 3 for i in range(vocab_size - 3)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def bench_pipeline(model, cfg: dict[str, int], device: str) -> dict[str, Any]:
    """The project's training and generation code on this model: what the train and generate stages run."""
    import random

    import torch

    from valueharm.alignment.training import LoraSettings, TrainSettings, add_lora, prepare_for_training, train_lora
    from valueharm.generation.hf import Sampling, generate_texts

    tokenizer = word_tokenizer(min(VOCAB, 4096))
    rng = random.Random(0)

    def words(n: int) -> str:
        return " ".join(f"w{rng.randrange(tokenizer.vocab_size - 3)}" for _ in range(n))

    n = cfg["batch"] * cfg["steps"]
    pairs = [(words(cfg["prompt_words"]), " " + words(cfg["target_words"])) for _ in range(n)]
    autocast = prepare_for_training(model)
    torch.set_grad_enabled(True)
    lora_model = add_lora(model, LoraSettings(r=8, alpha=32, dropout=0.1, target_modules=["q_proj", "v_proj"]))
    settings = TrainSettings(
        lr=2e-5, epochs=1, batch_size=cfg["batch"], max_length=cfg["prompt_words"] + cfg["target_words"] + 8
    )
    warm = TrainSettings(**{**settings.__dict__, "max_steps": 2})  # as the raw check's warm-up steps
    train_lora(lora_model, tokenizer, pairs, pairs[: cfg["batch"]], warm, stage="warm-up", autocast=autocast)
    result = train_lora(lora_model, tokenizer, pairs, pairs[: cfg["batch"]], settings, stage="bench", autocast=autocast)
    torch.set_grad_enabled(False)
    base = lora_model.unload()
    base.generation_config.eos_token_id = None
    prompts = [words(cfg["gen_prompt"]) for _ in range(cfg["gen_batch"])]
    sampling = Sampling(temperature=0.0, max_new_tokens=cfg["new"])
    answers = []
    for repeat in range(REPEATS + 1):  # the first call warms up at the timed batch shape, as _generate_tps
        if repeat == 1:
            _sync(device)
            start, answers = time.perf_counter(), []
        answers += generate_texts(base, tokenizer, prompts, sampling, batch_size=cfg["gen_batch"], reuse_prefix=False)
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "train": {k: result[k] for k in ("tokens_per_second", "model_tflops_per_second", "mfu", "mfu_peak", "steps")}
        | {"autocast": autocast, "weights": str(base.dtype).replace("torch.", "")},
        "generate_bs": cfg["gen_batch"],
        "generate_tokens_per_second": sum(t for _, t in answers) / seconds,
        "model": base,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model and batches (CPU smoke test)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip static cache + torch.compile")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device's dense bf16 peak, for MFU")
    parser.add_argument("--out", default="reports/perf/gpu_check.json", help="JSON results ('' to skip)")
    parser.add_argument(
        "--only", default="", help="comma-separated sections to run (default: all): " + ", ".join(SECTIONS)
    )
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
    import peft
    import transformers

    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "tiny": args.tiny,
        "dtype": str(dtype).replace("torch.", ""),
        "versions": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "errors": {},
    }
    peak = peak_flops(device, args.peak_tflops)
    on_cuda = device == "cuda"
    state = {"model": build_model(plan["model"], device, dtype)}

    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        print(f"error: unknown --only section(s) {sorted(unknown)}; use: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2

    def section(name: str, run) -> None:
        """Run one check; a failure is recorded (and printed) and the next check still runs."""
        if only and name not in only:
            return
        t0 = time.perf_counter()
        try:
            out = run(state["model"])
            if isinstance(out, dict) and "model" in out:
                state["model"] = out.pop("model")
            result[name] = out
        except Exception as exc:  # noqa: BLE001 - a GPU check reports every section it can
            result["errors"][name] = f"{type(exc).__name__}: {exc}"[:500]
            print(f"{name} failed: {result['errors'][name]}", file=sys.stderr)
            traceback.print_exc(limit=3)
        result.setdefault("section_seconds", {})[name] = round(time.perf_counter() - t0, 1)
        result["seconds"] = time.perf_counter() - started
        _write(args.out, result)
        print(f"[{result['seconds']:.0f} s] {name} done", flush=True)

    # Eager checks first, the compiled ones (minutes of compilation) last: a run cut short keeps the rest.
    section("train", lambda m: bench_train(m, plan["train"], device, peak))
    section("pipeline", lambda m: bench_pipeline(m, plan["pipeline"], device))
    section("generate", lambda m: bench_generate(m, plan["gen"], device, compile_=False))
    section("mixed", lambda m: bench_mixed(copy.deepcopy(m), plan["mixed"], device, plan["gen"]["prompt"]))
    if on_cuda and not args.no_compile:
        section("generate_compiled", lambda m: bench_generate_static(m, plan["gen"], device))
        section("train_compiled", lambda m: bench_train(m, plan["train"], device, peak, compiled=True))
    print("\n".join(summary_lines(result)))
    return 1 if result["errors"] else 0  # every other section's figures are still in --out


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"device {result['device']} ({result['dtype']})"]
    for key in ("train", "train_compiled"):
        if key in result:
            t = result[key]
            mfu = (
                f", MFU {100 * t['mfu']:.1f}% (4N: {100 * t['mfu_4n']:.1f}%)"
                if t["mfu"] is not None
                else ", MFU n/a (no known peak)"
            )
            lines.append(
                f"{key} LoRA {t['params'] / 1e9:.2f}B bs{t['batch']}x{t['seq']}: {t['tokens_per_second']:,.0f} tok/s{mfu}"
            )
    if "pipeline" in result:
        p = result["pipeline"]
        mfu = p["train"]["mfu"]
        lines.append(
            f"pipeline train_lora: {p['train']['tokens_per_second']:,.0f} tok/s"
            + (f", MFU {100 * mfu:.1f}%" if mfu is not None else "")
            + f"; generate_texts bs{p['generate_bs']}: {p['generate_tokens_per_second']:,.0f} tok/s"
        )
    for key in ("generate", "generate_compiled"):
        lines += [f"generate {k}: {v:,.0f} tok/s" for k, v in result.get(key, {}).items()]
    if "mixed" in result:
        m = result["mixed"]
        lines.append(
            f"mixed {m['adapters']} adapters bs{m['batch']}: peft {m['mixed_adapters_tokens_per_second']:,.0f} tok/s,"
            f" gathered {m['gathered_mixed_tokens_per_second']:,.0f} tok/s,"
            f" one adapter {m['single_adapter_tokens_per_second']:,.0f} tok/s"
            f" (peft {100 * m['mixed_over_single']:.0f}%, gathered {100 * m['gathered_over_single']:.0f}%)"
        )
    lines += [f"{name} FAILED: {error}" for name, error in result["errors"].items()]
    lines.append(f"total {result['seconds']:.0f} s")
    return lines


def _write(out: str, result: dict[str, Any]) -> None:
    if not out:
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    clean = {k: v for k, v in result.items() if k != "model"}
    tmp.write_text(
        json.dumps(clean, indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)) + "\n"
    )
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
