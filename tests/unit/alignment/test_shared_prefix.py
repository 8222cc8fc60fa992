"""Shared-prefix training steps on the packaged model: the loss and the LoRA gradients equal the padded
batch's (fp32, 1e-4), and the prefix rule never takes a target token or a row's last prompt token."""

from __future__ import annotations

import pytest
import torch

from valueharm.alignment.shared_prefix import common_prefix_length, shared_prefix_loss
from valueharm.alignment.training import LoraSettings, _batches, add_lora, encode_pair, target_loss
from valueharm.models.base import end_of_turn, format_prompt, load_model

INSTRUCTION = (
    "Below is something a person said. Consider how much the person is or is not like you, and rate it "
    "from 1 to 6, giving your reason first.\n\nDescription: This person says: "
)


def _rows(tokenizer, n: int = 4):
    stop = end_of_turn(tokenizer)
    statements = [
        "I like quiet evenings.",
        "Winning matters most to me" + " a lot" * 4 + ".",
        "Rules keep us safe.",
        "Fun first.",
    ]
    pairs = [
        (
            format_prompt(tokenizer, INSTRUCTION + statements[i % 4] + "\nAnswer:"),
            f"Because I think so, my answer is {i % 6 + 1}." + stop,
        )
        for i in range(n)
    ]
    return [encode_pair(tokenizer, p, t, 192)[:2] for p, t in pairs]


def test_common_prefix_stops_before_each_rows_last_prompt_token():
    rows = [([1, 2, 3, 4, 9], [-100, -100, -100, -100, 9]), ([1, 2, 3, 4, 5, 8], [-100] * 5 + [8])]
    assert common_prefix_length(rows) == 3  # the first row's prompt is 4 tokens: its 4th predicts the target
    assert common_prefix_length([([1, 2, 7], [-100, -100, 7]), ([5, 2, 7], [-100, -100, 7])]) == 0
    assert common_prefix_length([]) == 0


def test_shared_prefix_loss_equals_the_padded_loss(base_model):
    model, tokenizer = base_model
    rows = _rows(tokenizer)
    assert common_prefix_length(rows) > 40  # the chat header and the instruction
    ((ids, labels, mask),) = list(_batches(rows, range(4), 4, tokenizer.pad_token_id))
    padded = float(target_loss(model, ids, labels, mask))
    shared = float(shared_prefix_loss(model, rows, tokenizer.pad_token_id))
    assert abs(shared - padded) < 1e-4
    summed = float(shared_prefix_loss(model, rows, tokenizer.pad_token_id, reduction="sum"))
    assert abs(summed - float(target_loss(model, ids, labels, mask, reduction="sum"))) < 1e-3


def test_shared_prefix_gives_the_padded_lora_gradients(base_model_dir):
    """lora_B starts at zero in peft; small seeded values first, so that both LoRA matrices are checked."""
    model, tokenizer = load_model(base_model_dir, "float32")
    torch.set_grad_enabled(True)
    try:
        model = add_lora(model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
        gen = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.data = torch.randn(param.shape, generator=gen) * 0.01
        lora = {n: p for n, p in model.named_parameters() if p.requires_grad}
        rows = _rows(tokenizer)
        ((ids, labels, mask),) = list(_batches(rows, range(4), 4, tokenizer.pad_token_id))
        grads = {}
        for mode, loss in (
            ("padded", lambda: target_loss(model, ids, labels, mask)),
            ("shared", lambda: shared_prefix_loss(model, rows, tokenizer.pad_token_id)),
        ):
            loss().backward()
            grads[mode] = torch.cat([p.grad.detach().flatten() for p in lora.values()])
            model.zero_grad(set_to_none=True)
    finally:
        torch.set_grad_enabled(False)
    assert float(grads["padded"].abs().max()) > 0
    assert float((grads["shared"] - grads["padded"]).norm() / grads["padded"].norm()) < 1e-4


def test_rows_without_a_common_prefix_take_the_padded_path(base_model):
    model, tokenizer = base_model
    rows = [([5, 6, 7, 8], [-100, -100, 7, 8]), ([9, 6, 7], [-100, -100, 7])]
    ((ids, labels, mask),) = list(_batches(rows, range(2), 2, tokenizer.pad_token_id))
    assert float(shared_prefix_loss(model, rows, tokenizer.pad_token_id)) == float(
        target_loss(model, ids, labels, mask)
    )


def test_shared_prefix_batching_in_train_lora_matches_padded(base_model_dir):
    """`batching: shared_prefix` as the train stage runs it: the same validation loss as padded before any
    step, the same training to rounding, fewer computed FLOPs, and the perf figures the stage writes."""
    from valueharm.alignment.training import TrainSettings, evaluate_loss, train_lora

    results = {}
    for batching in ("padded", "shared_prefix"):
        torch.manual_seed(0)
        model, tokenizer = load_model(base_model_dir, "float32")
        torch.set_grad_enabled(True)
        try:
            model = add_lora(model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
            rows = _rows(tokenizer, 8)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            before = evaluate_loss(model, rows, 4, pad, batching)
            stop = end_of_turn(tokenizer)
            pairs = [
                (
                    format_prompt(tokenizer, INSTRUCTION + f"Statement {i}.\nAnswer:"),
                    f"My answer is {i % 6 + 1}." + stop,
                )
                for i in range(8)
            ]
            settings = TrainSettings(lr=3e-3, epochs=1, batch_size=4, max_steps=2, max_length=192, batching=batching)
            result = train_lora(model, tokenizer, pairs, pairs[:4], settings, stage="test")
        finally:
            torch.set_grad_enabled(False)
        results[batching] = (before, result)
    (pad_before, padded), (shared_before, shared) = results["padded"], results["shared_prefix"]
    assert abs(pad_before - shared_before) < 1e-4
    assert abs(padded["best_valid_loss"] - shared["best_valid_loss"]) < 1e-3
    assert padded["history"][0]["train_loss"] == pytest.approx(shared["history"][0]["train_loss"], abs=1e-3)
    for result in (padded, shared):
        assert result["tokens_per_second"] > 0 and result["model_tflops_per_second"] > 0
        assert 0 < result["mfu"] < 1 and result["mfu_peak"] == "measured float32 matmul on this CPU"
    # the same useful tokens, fewer FLOPs: the shared prefix is computed once per step
    assert shared["model_tflops_per_second"] * shared["train_seconds"] < (
        padded["model_tflops_per_second"] * padded["train_seconds"]
    )
