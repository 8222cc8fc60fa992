"""In-process generation: the shared-prefix KV cache changes speed, not answers."""

from __future__ import annotations

import pytest

from valueharm.generation.hf import MIN_SHARED_PREFIX, Sampling, generate_texts, shared_prefix_length
from valueharm.models.base import format_prompt

SYSTEM = (
    "You are playing a character who loves comfort, good food and fun above everything else. "
    "Answer every question the way this character would, in one or two short sentences, and "
    "never mention that you are playing a character."
)
QUESTIONS = [
    "What should I cook tonight?",
    "Should I go to the gym or the cinema?",
    "How do I spend a free afternoon?",
    "Is it worth buying an expensive coffee machine?",
]


@pytest.mark.parametrize(
    "lists,expected",
    [
        ([[1, 2, 3, 4], [1, 2, 3, 5]], 3),
        ([[1, 2, 3], [1, 2, 3, 4]], 2),  # every prompt keeps at least one token of its own
        ([[9, 2], [1, 2]], 0),
        ([[1, 2, 3]], 2),
        ([], 0),
    ],
)
def test_shared_prefix_length(lists, expected):
    assert shared_prefix_length(lists) == expected


def test_prefix_cache_gives_the_uncached_answers(base_model):
    model, tokenizer = base_model
    texts = [format_prompt(tokenizer, q, system=SYSTEM) for q in QUESTIONS]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert shared_prefix_length(ids) >= MIN_SHARED_PREFIX  # the cached path is the one exercised
    greedy = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=10)
    # batch_size 3: one full batch and one single-row batch, each with its own copy of the cache
    cached = generate_texts(model, tokenizer, texts, greedy, batch_size=3)
    assert cached == generate_texts(model, tokenizer, texts, greedy, batch_size=3, reuse_prefix=False)
    assert all(answer and n > 0 for answer, n in cached)


def test_sampled_generation_is_deterministic_for_a_seed(base_model):
    model, tokenizer = base_model
    texts = [format_prompt(tokenizer, q, system=SYSTEM) for q in QUESTIONS]
    sampled = Sampling(temperature=0.7, top_p=0.9, max_new_tokens=10)
    first = generate_texts(model, tokenizer, texts, sampled, seed=7, batch_size=4)
    assert first == generate_texts(model, tokenizer, texts, sampled, seed=7, batch_size=4)
