"""LoRA fine-tuning on (prompt, target) pairs with peft: loss on the target only.

One loop serves every adapter of the study (safety tuning, VIM stages AG then QA, controls).
Truncation only ever cuts the prompt side (the released VIM code cut targets), the best
validation epoch is kept, and loss curves go to DVCLive. Deterministic on CPU for a seed.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valueharm.core.errors import UserError
from valueharm.core.progress import progress


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 32
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    # Adapt only the last N decoder layers (null: all, as in the paper). Backpropagation then
    # stops at the lowest adapted layer, which is what makes a CPU adapter affordable.
    top_layers: int | None = None


@dataclass
class TrainSettings:
    lr: float = 2e-5
    epochs: int = 5
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = -1  # cap on optimiser steps per call (-1: none)
    max_length: int = 128
    warmup_ratio: float = 0.0
    schedule: str = "linear"  # linear | constant
    weight_decay: float = 0.0
    seed: int = 42
    # How a step's examples become tensors (BATCHING): `padded` (today's, bit-exact) pads every row
    # to the longest; `packed` puts the same examples into as few rows as fit max_length, each
    # sequence attending only to itself (same loss up to rounding, less compute on padding);
    # `bucketed` groups examples of similar length into steps (different batches, least padding);
    # `shared_prefix` runs the prompt prefix a step's rows share once (`alignment.shared_prefix`: same
    # batches, same loss up to rounding, less compute where every prompt starts alike, as the QA stage's).
    batching: str = "padded"


BATCHING = ("padded", "packed", "bucketed", "shared_prefix")
BUCKET_WINDOW = 16  # batches per length-sorted window in `bucketed` (larger: less padding, less mixing)


def settings_from(params: dict[str, Any], cls):
    known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
    return cls(**known)


def linear_layer_names(model) -> list[str]:
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)})


def add_lora(model, lora: LoraSettings):
    """Wrap a model with a fresh LoRA adapter; unknown target modules fail with the valid names."""
    from peft import LoraConfig, get_peft_model

    available = linear_layer_names(model)
    unknown = [m for m in lora.target_modules if m not in available]
    if unknown:
        raise UserError(
            f"unknown LoRA target module(s) {unknown}", "this model's linear layers are: " + ", ".join(available)
        )
    layers = None
    if lora.top_layers is not None:
        total = int(getattr(model.config, "num_hidden_layers", 0) or 0)
        if not 1 <= int(lora.top_layers) <= total:
            raise UserError(
                f"lora.top_layers {lora.top_layers} is not between 1 and this model's {total} layers",
                "set top_layers to a layer count in that range, or null for all layers",
            )
        layers = list(range(total - int(lora.top_layers), total))
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        layers_to_transform=layers,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def encode_pair(
    tokenizer, prompt_text: str, target_text: str, max_length: int
) -> tuple[list[int], list[int], int] | None:
    """Token ids and labels (-100 on the prompt), cut on the prompt side only (`vim.truncate_prompt_side`).

    The prompt is encoded as generation and scoring encode it (`models.base.encode`: BOS first where the
    tokenizer expects one, and a cut never removes it); the target is plain tokens.
    Returns (input_ids, labels, prompt tokens cut), or None when the target alone does not fit
    (the caller drops and counts it; a target is never cut).
    """
    from valueharm.alignment.vim import TargetTooLong, truncate_prompt_side
    from valueharm.models.base import bos_prefix, encode

    prompt_ids = encode(tokenizer, prompt_text)  # BOS first where the tokenizer expects it, as generation
    target_ids = tokenizer(target_text, add_special_tokens=False)["input_ids"]
    try:
        fit = truncate_prompt_side(prompt_ids, target_ids, max_length, keep_first=len(bos_prefix(tokenizer)))
    except TargetTooLong:
        return None
    return fit.prompt_ids + fit.target_ids, [-100] * len(fit.prompt_ids) + fit.target_ids, fit.prompt_cut


def _batches(encoded: Sequence[tuple[list[int], list[int]]], order: Sequence[int], size: int, pad_id: int):
    """Right-padded batches (ids, labels, mask) of `size` examples in `order`."""
    import torch

    for start in range(0, len(order), size):
        chunk = [encoded[i] for i in order[start : start + size]]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (tok, lab) in enumerate(chunk):
            ids[row, : len(tok)] = torch.tensor(tok)
            labels[row, : len(lab)] = torch.tensor(lab)
            mask[row, : len(tok)] = 1
        yield ids, labels, mask


def pack_rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing: indices into `lengths` grouped into rows whose total fits `capacity`.

    Deterministic (ties keep input order); an item longer than `capacity` gets a row of its own.
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for r, left in enumerate(room):
            if lengths[index] <= left:
                rows[r].append(index)
                room[r] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(capacity - lengths[index])
    return rows


def _packed_batches(
    encoded: Sequence[tuple[list[int], list[int]]], order: Sequence[int], size: int, pad_id: int, capacity: int
):
    """The same steps as `_batches`, each packed into few rows: (ids, labels, real-token mask, position_ids).

    Positions restart at 0 for every sequence, which is what makes transformers build a
    block-diagonal causal mask (no sequence sees another); the first token of each sequence gets
    no label, as in a padded row where nothing precedes it. Row tails are padding with their own
    positions and no labels.
    """
    import torch

    for start in range(0, len(order), size):
        chunk = [encoded[i] for i in order[start : start + size]]
        rows = pack_rows([len(ids) for ids, _ in chunk], capacity)
        width = max(sum(len(chunk[i][0]) for i in row) for row in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        real = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for i in sorted(row):
                tok, lab = chunk[i]
                ids[r, at : at + len(tok)] = torch.tensor(tok)
                labels[r, at + 1 : at + len(lab)] = torch.tensor(lab[1:])
                positions[r, at : at + len(tok)] = torch.arange(len(tok))
                at += len(tok)
            positions[r, at:] = torch.arange(width - at)
            real[r, :at] = 1
        yield ids, labels, real, positions


def bucketed_order(lengths: Sequence[int], order: Sequence[int], size: int, generator) -> list[int]:
    """`order` regrouped so that each step holds examples of similar length (less padding).

    Windows of BUCKET_WINDOW steps of the shuffled order are sorted by length and cut into
    steps; the steps are then shuffled with the run's generator, so long and short steps mix.
    """
    import torch

    window = size * BUCKET_WINDOW
    steps: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        steps.extend(chunk[k : k + size] for k in range(0, len(chunk), size))
    shuffled = torch.randperm(len(steps), generator=generator).tolist()
    return [i for s in shuffled for i in steps[s]]


def make_batches(
    encoded: Sequence[tuple[list[int], list[int]]],
    order: Sequence[int],
    size: int,
    pad_id: int,
    batching: str = "padded",
    capacity: int | None = None,
    generator=None,
):
    """Batches as (ids, labels, real-token mask, position_ids or None) for the chosen `batching`.

    With position_ids (packed rows) the model gets no attention mask: transformers derives the
    block-diagonal causal mask from the restarting positions.
    """
    if batching not in BATCHING:
        raise UserError(f"train batching {batching!r} is unknown", "use one of: " + ", ".join(BATCHING))
    if batching == "packed":
        cap = capacity or max(len(ids) for ids, _ in encoded)
        yield from _packed_batches(encoded, order, size, pad_id, cap)
        return
    if batching == "bucketed" and generator is not None:
        order = bucketed_order([len(ids) for ids, _ in encoded], list(order), size, generator)
    for ids, labels, mask in _batches(encoded, order, size, pad_id):
        yield ids, labels, mask, None


def _keeps_logits(model) -> bool:
    """Whether the model's forward takes `logits_to_keep` (recent transformers causal LMs do)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _forward_takes(type(base), "logits_to_keep")


@functools.cache
def _forward_takes(model_class: type, name: str) -> bool:
    """Signature lookup once per model class, not once per training step."""
    return name in inspect.signature(model_class.forward).parameters


def logits_to_keep(labels) -> int:
    """Positions from just before the earliest target to the end: all the loss needs logits for."""
    has_target = (labels != -100).any(dim=0)
    first = int(has_target.float().argmax()) if bool(has_target.any()) else labels.size(1) - 1
    return labels.size(1) - max(first - 1, 0)


def target_loss(model, ids, labels, mask, reduction: str = "mean", position_ids=None, keep: int | None = None):
    """Cross-entropy on target tokens only, running the LM head only where targets are.

    Targets sit at the end of each right-padded row, so only the positions from the earliest
    target onwards need logits: this skips most of the vocabulary projection and softmax for
    long prompts (a third of a CPU training step for the questionnaire stage).
    """
    import torch

    keep = logits_to_keep(labels) if keep is None else keep  # `keep` from host labels avoids a device wait
    kwargs = {"logits_to_keep": keep} if _keeps_logits(model) else {}
    if position_ids is not None:  # packed rows: the mask comes from the restarting positions
        kwargs["position_ids"] = position_ids
        mask = None
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs).logits
    logits = logits[:, -keep:-1].float()
    target = labels[:, ids.size(1) - keep + 1 :]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction=reduction
    )


def decide_training_precision(compute: str, device: str) -> tuple[str, str | None]:
    """(dtype to train the weights in, autocast dtype or None) for LoRA training in `compute` precision.

    Pure, so the choice is testable without the hardware. On CPU a half-precision compute dtype runs
    as fp32 weights under autocast: measured on a 2-core Xeon with AMX-BF16 (2026-12-03, SmolLM2-135M,
    8 x 128 tokens, LoRA r8 q/v on the top 12 layers), fp32 weights + bf16 autocast trained at 1.3-1.6x
    fp32 tokens/s, bf16 weights with fp32 LoRA at 0.8-1.0x, bf16 weights under autocast at 0.9x, at
    the same loss to the third decimal (in the train stage itself the gain has not shown: README). On CUDA the frozen weights are loaded in `compute` and LoRA
    stays fp32 (peft's default), the usual recipe for a 7B model in GPU memory.
    """
    if compute == "float32":
        return "float32", None
    if device == "cpu":
        return "float32", compute
    return compute, None


def prepare_for_training(model) -> str | None:
    """Put a loaded model in its training precision; return the autocast dtype name (or None).

    The model stays loaded in `model.dtype` (what generation and scoring serve), so on a CPU the
    weights are upcast from those rounded values: the adapter learns against exactly the base it
    will run on. On CUDA nothing changes (bf16 weights, fp32 LoRA).
    """
    from valueharm.models.base import dtype_name

    weights, autocast = decide_training_precision(dtype_name(model), model.device.type)
    if weights != dtype_name(model):
        model.float()
    return autocast


def autocast_context(model, dtype: str | None):
    """torch.autocast in `dtype` on the model's device, or a no-op (fp32: today's bit-exact path)."""
    import contextlib

    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=model.device.type, dtype=getattr(torch, dtype))


def _to(device, *tensors):
    return [t.to(device) if t is not None else None for t in tensors]


def evaluate_loss(
    model,
    encoded,
    batch_size: int,
    pad_id: int,
    batching: str = "padded",
    capacity: int | None = None,
    autocast: str | None = None,
) -> float:
    """Mean per-token loss on target tokens (`packed` gives the padded value up to rounding)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    mode = batching if batching in ("packed", "shared_prefix") else "padded"  # bucketing changes no sum
    with torch.no_grad():
        for batch in step_batches(encoded, range(len(encoded)), batch_size, pad_id, mode, capacity):
            with autocast_context(model, autocast):
                loss, _ = batch_loss(model, batch, pad_id, reduction="sum")
            total += float(loss)
            count += _target_count(batch)
    return total / max(count, 1)


def step_batches(
    encoded: Sequence[tuple[list[int], list[int]]],
    order: Sequence[int],
    size: int,
    pad_id: int,
    batching: str = "padded",
    capacity: int | None = None,
    generator=None,
):
    """One step's examples at a time: `make_batches`' tensors, or for `shared_prefix` the encoded rows
    themselves (`shared_prefix_loss` lays them out around their common prefix)."""
    if batching == "shared_prefix":
        for start in range(0, len(order), size):
            yield [encoded[i] for i in order[start : start + size]]
        return
    yield from make_batches(encoded, order, size, pad_id, batching, capacity, generator)


def _target_count(batch) -> int:
    """Target tokens that get a loss in one step's batch (a row's first token never does)."""
    if isinstance(batch, list):
        return sum(sum(1 for label in labels[1:] if label != -100) for _, labels in batch)
    return int((batch[1][:, 1:] != -100).sum())


def batch_loss(model, batch, pad_id: int, reduction: str = "mean"):
    """(target-token loss, tokens the model computed on that are not padding) for one step's batch.

    The second figure is what FLOPs are counted on: for `shared_prefix` the common prefix once plus each
    row's own suffix; otherwise every real token of the batch.
    """
    if isinstance(batch, list):
        from valueharm.alignment.shared_prefix import MIN_PREFIX, common_prefix_length, shared_prefix_loss

        prefix = common_prefix_length(batch)
        shared = prefix if prefix >= MIN_PREFIX and len(batch) > 1 else 0
        computed = sum(len(ids) for ids, _ in batch) - shared * (len(batch) - 1)
        return shared_prefix_loss(model, batch, pad_id, reduction=reduction), computed
    # Counted on the host copies: reading a GPU tensor would make the host wait for the device.
    real, keep, host_mask = int(batch[2].sum()), logits_to_keep(batch[1]), batch[2]
    ids, labels, mask, positions = _to(model.device, *batch)
    if positions is None and right_padded(host_mask):
        # Causal attention never lets a real token see the padding after it, so right-padded rows need no
        # mask for the target loss; without one, SDPA can take its fused causal kernel.
        mask = None
    return target_loss(model, ids, labels, mask, reduction, positions, keep), real


def right_padded(mask) -> bool:
    """Whether every row of a (host) attention mask is ones followed only by zeros."""
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def _batch_shape(batch) -> tuple[int, int]:
    """(useful tokens, tokens a padded layout computes) of one step's batch: `padding_fraction`'s parts."""
    if isinstance(batch, list):
        return sum(len(ids) for ids, _ in batch), len(batch) * max(len(ids) for ids, _ in batch)
    return int(batch[2].sum()), batch[0].numel()


def adapted_layers(model) -> int | None:
    """Decoder layers from the lowest one holding a trainable weight to the top (what backprop runs
    through), or None when no layer index is found (then every layer is counted)."""
    import re

    indices = [
        int(found.group(1))
        for name, param in model.named_parameters()
        if param.requires_grad and (found := re.search(r"\.layers\.(\d+)\.", name))
    ]
    total = int(getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0)
    return total - min(indices) if indices and total else None


def _lora_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}


def train_lora(
    model,
    tokenizer,
    train: Sequence[tuple[str, str]],
    valid: Sequence[tuple[str, str]],
    settings: TrainSettings,
    live=None,
    stage: str = "train",
    autocast: str | None = None,
) -> dict[str, Any]:
    """Train the (already LoRA-wrapped) model on prompt/target text pairs; keep the best validation epoch.

    `autocast` (a dtype name, from `prepare_for_training`) runs forward passes under torch.autocast;
    None keeps the model's own dtype. Returns metrics: losses per epoch, best epoch, steps, tokens/s,
    truncation counts.
    """
    import torch

    if not train:
        raise UserError(f"{stage}: no training examples", "check the corpus and the profile's AG/QA rules")
    if settings.batching not in BATCHING:
        raise UserError(f"train batching {settings.batching!r} is unknown", "use one of: " + ", ".join(BATCHING))
    torch.manual_seed(settings.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    enc_train, enc_valid, truncated, dropped = [], [], 0, 0
    for pairs, sink in ((train, enc_train), (valid, enc_valid)):
        for prompt, target in pairs:
            encoded = encode_pair(tokenizer, prompt, target, settings.max_length)
            if encoded is None:
                dropped += 1
                continue
            truncated += encoded[2] > 0
            sink.append(encoded[:2])
    if not enc_train:
        raise UserError(
            f"{stage}: every training target is longer than max_length {settings.max_length}",
            "raise max_length in params.yaml",
        )
    steps_per_epoch = math.ceil(len(enc_train) / (settings.batch_size * settings.grad_accum))
    total_steps = steps_per_epoch * settings.epochs
    if settings.max_steps and settings.max_steps > 0:
        total_steps = min(total_steps, settings.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = int(settings.warmup_ratio * total_steps)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        if settings.schedule == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(total_steps - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor)
    generator = torch.Generator().manual_seed(settings.seed)
    history: list[dict[str, float]] = []
    mode, cap = settings.batching, settings.max_length

    def validate() -> float:
        if not enc_valid:
            return float("nan")
        return evaluate_loss(model, enc_valid, settings.batch_size, pad_id, mode, cap, autocast)

    initial = validate()
    best = {"epoch": 0, "valid_loss": initial, "state": _lora_state(model)}
    step, tokens, computed, train_seconds, flops = 0, 0, 0, 0.0, 0.0
    from valueharm.core.perf import training_flops_per_token

    config, trained_layers = getattr(model, "config", None), adapted_layers(model)
    bar = progress(total_steps, f"train {stage}", unit="steps")
    for epoch in range(1, settings.epochs + 1):
        if step >= total_steps:
            break
        model.train()
        order = torch.randperm(len(enc_train), generator=generator).tolist()
        # Step losses stay on the device until the epoch ends: reading one per step (float(loss)) makes
        # the host wait for each backward pass before it queues the next step (on an H200 the pipeline's
        # tokens/s did not change measurably without it: README). Summed in float64 as Python floats were.
        running, seen, logged = torch.zeros((), dtype=torch.float64, device=model.device), 0, []
        micro = list(step_batches(enc_train, order, settings.batch_size, pad_id, mode, cap, generator))
        started = time.perf_counter()
        for index, batch in enumerate(micro):
            with autocast_context(model, autocast):
                loss, real = batch_loss(model, batch, pad_id)
            (loss / settings.grad_accum).backward()
            running = running + loss.detach().double()
            seen += 1
            useful, laid_out = _batch_shape(batch)
            tokens += useful
            computed += laid_out
            if config is not None:
                flops += real * training_flops_per_token(config, max(laid_out // (2 * len(batch)), 1), trained_layers)
            if (index + 1) % settings.grad_accum == 0 or index + 1 == len(micro):
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
                scheduler.step()
                optimiser.zero_grad(set_to_none=True)
                step += 1
                bar.update(1)
                logged.append((running, seen))
                if step >= total_steps:
                    break
        sums = torch.stack([total for total, _ in logged]).tolist() if logged else []  # waits for the device
        train_seconds += time.perf_counter() - started
        for total, (_, count) in zip(sums, logged, strict=True):
            if live is not None:
                live.log_metric(f"{stage}/train_loss", total / count)
                live.next_step()
        if sums:
            bar.set_postfix(loss=f"{sums[-1] / logged[-1][1]:.3f}", refresh=False)
        valid_loss = validate()
        history.append({"epoch": epoch, "train_loss": float(running) / max(seen, 1), "valid_loss": valid_loss})
        if live is not None:
            live.log_metric(f"{stage}/valid_loss", valid_loss, plot=False)
        if not enc_valid or valid_loss < best["valid_loss"] or best["epoch"] == 0 and math.isnan(best["valid_loss"]):
            best = {"epoch": epoch, "valid_loss": valid_loss, "state": _lora_state(model)}
    bar.close()
    model.load_state_dict(best["state"], strict=False)
    model.eval()
    return {
        **_throughput(model, autocast, tokens, computed, train_seconds, flops),
        "stage": stage,
        "autocast": autocast,
        "n_train": len(enc_train),
        "n_valid": len(enc_valid),
        "prompt_truncated": truncated,
        "dropped_long_target": dropped,
        "steps": step,
        "initial_valid_loss": initial,
        "best_epoch": best["epoch"],
        "best_valid_loss": best["valid_loss"],
        "history": history,
    }


def _throughput(model, autocast: str | None, tokens: int, computed: int, seconds: float, flops: float) -> dict:
    """Wall-clock figures of a training call (they go to reports/perf/, never into compared metrics):
    useful tokens (prompt + target, no padding) per second of optimiser steps, the share of a padded
    layout that is padding, model FLOP/s (`core.perf.training_flops_per_token` on the tokens actually
    computed) and MFU against the device's peak in the compute dtype (`core.perf.peak_flops`)."""
    from valueharm.core.perf import peak_flops
    from valueharm.models.base import dtype_name

    achieved = flops / seconds if seconds > 0 else 0.0
    peak, basis = peak_flops(model.device.type, autocast or dtype_name(model)) if achieved else (None, "no steps")
    return {
        "train_seconds": seconds,
        "tokens_per_second": tokens / seconds if seconds > 0 else 0.0,
        "padding_fraction": 1 - tokens / computed if computed else 0.0,
        "model_tflops_per_second": achieved / 1e12,
        "mfu": achieved / peak if peak else None,
        "mfu_peak": basis,
    }


PERF_KEYS = ("tokens_per_second", "train_seconds", "padding_fraction", "model_tflops_per_second", "mfu", "mfu_peak")


def save_adapter(model, folder: str | Path) -> None:
    """`save_pretrained` as safetensors, then adapter_config.json in a canonical form.

    peft keeps `target_modules` as a set, so the saved list follows the interpreter's string hash
    seed and the same adapter got a different adapter_config.json (and DVC hash) in every other
    process; sorted lists and keys make the folder byte-identical for the same training.
    """
    import json

    from valueharm.core.atomic import write_json

    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    for config in folder.rglob("adapter_config.json"):
        data = json.loads(config.read_text(encoding="utf-8"))
        for key in ("target_modules", "modules_to_save", "layers_to_transform"):
            if isinstance(data.get(key), list):
                data[key] = sorted(data[key], key=str)
        write_json(config, data)  # canonical JSON (sorted keys), as every file the project writes


def pop_perf(result: dict[str, Any]) -> dict[str, float]:
    """Take the wall-clock figures out of `train_lora`'s result: they vary between runs, so they
    go to reports/perf/ and the metrics stay byte-identical."""
    return {key: result.pop(key) for key in PERF_KEYS}
