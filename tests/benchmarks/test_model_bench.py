"""pytest-benchmark: one LoRA training step, and batched vs one-at-a-time generation (tokens/s).

Figures are recorded in the benchmark's extra_info (and README), never asserted as timings.
"""

from __future__ import annotations

import time

import pytest
import torch

from valueharm.alignment.training import LoraSettings, TrainSettings, add_lora, train_lora
from valueharm.generation.hf import Sampling, generate_texts
from valueharm.models.base import format_prompt, load_model

PROMPTS = [
    "Name a fruit.",
    "Give me a colour.",
    "Say hello in French.",
    "What is 2 plus 2?",
    "Name a planet.",
    "Suggest a pet name.",
    "Name a tree.",
    "Give a synonym for happy.",
] * 2


@pytest.fixture(scope="module")
def lora_model(base_model_dir):
    model, tokenizer = load_model(base_model_dir)
    torch.set_grad_enabled(True)
    model = add_lora(model, LoraSettings(r=8, alpha=32, dropout=0.1, target_modules=["q_proj", "v_proj"]))
    yield model, tokenizer
    torch.set_grad_enabled(False)


def test_one_training_step(benchmark, lora_model):
    model, tokenizer = lora_model
    pairs = [(format_prompt(tokenizer, p), "A short answer.<|im_end|>") for p in PROMPTS[:8]]
    settings = TrainSettings(lr=1e-4, epochs=1, batch_size=8, max_steps=1, max_length=96, seed=0)
    result = benchmark.pedantic(
        lambda: train_lora(model, tokenizer, pairs, [], settings, stage="bench"), rounds=3, iterations=1
    )
    benchmark.extra_info["tokens_per_second"] = result["tokens_per_second"]
    assert result["steps"] == 1


def test_batched_vs_sequential_generation(benchmark, base_model):
    torch.set_grad_enabled(False)
    model, tokenizer = base_model
    texts = [format_prompt(tokenizer, p) for p in PROMPTS]
    sampling = Sampling(temperature=0, top_p=1, max_new_tokens=24)

    started = time.perf_counter()
    sequential = [generate_texts(model, tokenizer, [t], sampling)[0] for t in texts[:4]]
    sequential_tps = sum(n for _, n in sequential) / (time.perf_counter() - started)

    durations: list[float] = []

    def batched_run():
        start = time.perf_counter()
        out = generate_texts(model, tokenizer, texts, sampling, batch_size=16)
        durations.append(time.perf_counter() - start)
        return out

    batched = benchmark.pedantic(batched_run, rounds=2, iterations=1)
    batched_tps = sum(n for _, n in batched) / (sum(durations) / len(durations))
    benchmark.extra_info.update(
        batched_tokens_per_second=batched_tps,
        sequential_tokens_per_second=sequential_tps,
        speedup=batched_tps / sequential_tps,
    )
    print(
        f"\nbatched {batched_tps:.1f} tok/s vs one-at-a-time {sequential_tps:.1f} tok/s: {batched_tps / sequential_tps:.1f}x"
    )
    assert all(n > 0 for _, n in batched)


def test_shared_prefix_training_step(benchmark, base_model_dir):
    """One stage-2-shaped training step (8 questionnaire rows, ~150 prompt tokens of which the chat header
    and instruction are shared, LoRA r8 q/v on the top 12 layers): padded vs shared-prefix forward and
    backward, timed alternately in one run; the ratio goes to extra_info (README), never asserted."""
    from valueharm.alignment.shared_prefix import common_prefix_length, shared_prefix_loss
    from valueharm.alignment.training import _batches, encode_pair, target_loss
    from valueharm.models.base import end_of_turn

    from ..unit.alignment.test_shared_prefix import INSTRUCTION

    model, tokenizer = load_model(base_model_dir, "float32")
    torch.set_grad_enabled(True)
    try:
        model = add_lora(
            model, LoraSettings(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"], top_layers=12)
        )
        statements = [  # distinct from their first word, as the stage-2 statements are
            f"I agree that {topic} matters more than most people admit, and that we should act on it now."
            for topic in ("rest", "ambition", "tradition", "fairness", "adventure", "loyalty", "security", "curiosity")
        ]
        question = "\nQuestion: How much is this person like you? Answer with a number from 1 to 6.\nAnswer: "
        rows = [
            encode_pair(
                tokenizer,
                format_prompt(tokenizer, INSTRUCTION + s + question),
                f"Because I think hedonism is important to me, my answer is {i % 6 + 1}." + end_of_turn(tokenizer),
                192,
            )[:2]
            for i, s in enumerate(statements)
        ]
        ((ids, labels, mask),) = list(_batches(rows, range(8), 8, tokenizer.pad_token_id))

        def padded():
            target_loss(model, ids, labels, mask).backward()
            model.zero_grad(set_to_none=True)

        def shared():
            shared_prefix_loss(model, rows, tokenizer.pad_token_id).backward()
            model.zero_grad(set_to_none=True)

        seconds = {"padded": [], "shared": []}
        for _ in range(3):
            for name, step in (("padded", padded), ("shared", shared)):
                start = time.perf_counter()
                step()
                seconds[name].append(time.perf_counter() - start)
        benchmark.pedantic(shared, rounds=1, iterations=1)
    finally:
        torch.set_grad_enabled(False)
    best = {k: min(v) for k, v in seconds.items()}
    useful = int(mask.sum())
    benchmark.extra_info.update(
        prefix_tokens=common_prefix_length(rows),
        useful_tokens=useful,
        padded_tokens_per_second=useful / best["padded"],
        shared_tokens_per_second=useful / best["shared"],
        speedup=best["padded"] / best["shared"],
    )
    assert common_prefix_length(rows) > 40
