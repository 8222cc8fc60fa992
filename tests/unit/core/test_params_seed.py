"""seed_everything: deterministic torch without the NaN fill of fresh memory (a debugging aid that
costs training throughput and changes no output)."""

import random

import torch

from valueharm.core.params import seed_everything


def test_seed_everything_is_deterministic_without_filling_fresh_memory():
    before = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    try:
        seed_everything(7)
        first = (random.random(), torch.rand(3).tolist())
        seed_everything(7)
        assert (random.random(), torch.rand(3).tolist()) == first
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.utils.deterministic.fill_uninitialized_memory = before[1]
