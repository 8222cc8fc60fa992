"""Likelihood scoring: the cached path equals direct forward passes; views are distributions."""

from __future__ import annotations

import math

import pytest

from valueharm.core.values import VALUES
from valueharm.evaluation.likelihood import (
    SCALE,
    OptionScore,
    distribution,
    item_options,
    item_views,
    option_logprobs,
    score_items,
)


@pytest.fixture(scope="module")
def tiny(base_model_dir):
    """A 2-layer random Llama with the packaged model's tokenizer (fast, and still a real causal LM)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    model = LlamaForCausalLM(config).eval()
    return model, tokenizer


def direct_logprob(model, tokenizer, prompt: str, option: str) -> float:
    """Sum of log p(option tokens) from one uncached forward pass over prompt + option."""
    import torch

    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    o = tokenizer(option, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([p + o])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(p) - 1 + j, tok] for j, tok in enumerate(o)))


PROMPTS = [
    "Instructions shared by all items.\nDescription: This person loves parties.\nAnswer: ",
    "Instructions shared by all items.\nDescription: Rules matter to this person.\nAnswer: ",
    "Something else entirely, no shared prefix. Answer: ",
]


def test_cached_scores_equal_direct_forward_passes(tiny):
    model, tokenizer = tiny
    options = [["6", "Because I think hedonism is very important to me, my answer is 6.", "1"]] * 2 + [
        ["4", "Because I think power is not important at all to me, my answer is 1."]
    ]
    got = option_logprobs(model, tokenizer, PROMPTS, options)
    for prompt, opts, scores in zip(PROMPTS, options, got):
        for option, score in zip(opts, scores):
            assert score.logprob == pytest.approx(direct_logprob(model, tokenizer, prompt, option), abs=1e-4)
            assert score.chars == len(option)
            assert score.tokens == len(tokenizer(option, add_special_tokens=False)["input_ids"])


def test_views_equal_direct_forward_passes_and_sum_to_one(tiny):
    model, tokenizer = tiny
    views = score_items(model, tokenizer, PROMPTS[:1], ["hedonism"])[0]
    direct = [direct_logprob(model, tokenizer, PROMPTS[0], text) for _, _, text in item_options()]
    want_forced = distribution([direct[VALUES.index("hedonism") * 6 + s - 1] for s in SCALE])
    assert views["forced"]["raw"]["probs"] == pytest.approx(want_forced, abs=1e-4)
    want_bare = distribution(direct[60:])
    assert views["bare"]["raw"]["probs"] == pytest.approx(want_bare, abs=1e-4)
    joint = distribution(direct[:60])
    want_marginal = [sum(joint[v * 6 + s] for v in range(10)) for s in range(6)]
    assert views["marginal"]["raw"]["probs"] == pytest.approx(want_marginal, abs=1e-4)
    for view in ("forced", "marginal", "bare"):
        for variant in ("raw", "norm"):
            summary = views[view][variant]
            assert sum(summary["probs"]) == pytest.approx(1.0, abs=1e-9)
            assert 1 <= summary["expected"] <= 6
            assert 0 <= summary["entropy"] <= math.log(6) + 1e-9
            assert summary["argmax"] == 1 + max(range(6), key=lambda i: summary["probs"][i])
    assert sum(views["marginal"]["raw"]["p_values"].values()) == pytest.approx(1.0)


def test_views_from_hand_made_scores():
    """A forced answer of 6 with certainty; length normalisation changes the distribution."""
    options = item_options()
    scores = []
    for value, s, text in options:
        lp = -1.0 if (value == "power" and s == 6) else -30.0
        scores.append(OptionScore(lp, 10, len(text)))
    views = item_views("power", scores)
    assert views["forced"]["raw"]["argmax"] == 6
    assert views["forced"]["raw"]["expected"] == pytest.approx(6.0, abs=1e-6)
    assert views["forced"]["raw"]["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert views["marginal"]["raw"]["p_keyed"] == pytest.approx(1.0, abs=1e-6)
    assert views["bare"]["raw"]["expected"] == pytest.approx(3.5)  # all equal: uniform
    assert views["bare"]["raw"]["entropy"] == pytest.approx(math.log(6))
    assert views["forced"]["norm"]["expected"] < views["forced"]["raw"]["expected"]
    with pytest.raises(ValueError):
        item_views("power", scores[:10])


def test_a_small_training_run_towards_six_raises_the_forced_score(tiny):
    """Real training (the project's loop, loss on the target only) on VIM answers of 6 moves the forced view up."""
    import copy

    from valueharm.alignment.training import TrainSettings, train_lora
    from valueharm.alignment.vim import build_qa_examples
    from valueharm.data.arguments import Argument

    model, tokenizer = tiny
    model = copy.deepcopy(model)
    args = [
        Argument(str(i), f"We should do thing {i}", "in favor of", f"it helps with {i}", {"hedonism": 1})
        for i in range(64)
    ]
    examples = build_qa_examples(args, {v: 6.0 for v in VALUES}, seed=0)
    prompt = examples[0].prompt  # a trained statement, in the study's QA format
    before = score_items(model, tokenizer, [prompt], ["hedonism"])[0]["forced"]["raw"]
    # every weight of the 2-layer model trains (a LoRA on a 32-wide random model learns too slowly for a unit test;
    # the LoRA path on the real model is tests/unit/alignment/test_training.py)
    import torch

    torch.set_grad_enabled(True)
    settings = TrainSettings(lr=1e-2, epochs=4, batch_size=8, max_steps=24, max_length=128, seed=0)
    train_lora(model, tokenizer, [(e.prompt, e.target) for e in examples], [], settings)
    torch.set_grad_enabled(False)
    after = score_items(model, tokenizer, [prompt], ["hedonism"])[0]["forced"]["raw"]
    assert after["probs"][5] > before["probs"][5] + 0.3, (before, after)
    assert after["expected"] > before["expected"] + 0.3
