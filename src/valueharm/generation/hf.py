"""In-process generation with transformers: batched, left-padded, KV cache, seeded.

Prompts are sorted by length into batches (less padding), answers are returned in input order.
Greedy decoding when temperature is 0; otherwise sampling with a per-batch seed derived from
the run's seed, so results do not depend on which other prompts share the run.

A long prefix shared by every prompt (a role-play system prompt, a mitigation prompt) is run
through the model once and its KV cache reused by every batch: the prompt-only baselines would
otherwise spend most of their time re-reading the same few hundred tokens for each question.
Each batch is laid out as [prefix][left padding][suffix], so positions stay those of the
unpadded prompt and the answers match the uncached path up to floating-point rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from valueharm.core.progress import progress
from valueharm.generation.base import GENERATION_BACKENDS, Backend, Sampling, sampling_dict
from valueharm.models.base import cache_kwarg, encode

__all__ = ["HFBackend", "Sampling", "generate_texts", "sampling_dict", "shared_prefix_length"]

MIN_SHARED_PREFIX = 32  # tokens; shorter shared prefixes are cheaper to recompute than to copy


def shared_prefix_length(token_lists: Sequence[Sequence[int]]) -> int:
    """Length of the longest common token prefix, leaving at least one token to every prompt."""
    if not token_lists:
        return 0
    first, n = token_lists[0], min(len(t) for t in token_lists) - 1
    for k in range(max(n, 0)):
        if any(t[k] != first[k] for t in token_lists[1:]):
            return k
    return max(n, 0)


def generate_texts(
    model,
    tokenizer,
    texts: Sequence[str],
    sampling: Sampling,
    seed: int = 0,
    batch_size: int = 16,
    reuse_prefix: bool = True,
) -> list[tuple[str, int]]:
    """Generate continuations of fully formatted prompt texts; returns (answer, tokens generated)."""
    import copy

    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [encode(tokenizer, t) for t in texts]  # BOS first where the tokenizer expects it
    order = sorted(range(len(texts)), key=lambda i: (len(encoded[i]), i))
    results: list[tuple[str, int]] = [("", 0)] * len(texts)
    stop_ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    if im_end is not None:
        stop_ids.add(im_end)
    stop_ids.discard(None)
    prefix = shared_prefix_length(encoded) if reuse_prefix and len(texts) > 1 else 0
    prefix_cache = None
    if prefix >= MIN_SHARED_PREFIX:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([encoded[0][:prefix]], device=model.device), use_cache=True)
            prefix_cache = getattr(out, "cache", None) or out.past_key_values
    else:
        prefix = 0
    pad = tokenizer.pad_token_id
    bar = progress(len(order), "generate", unit="prompts")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(encoded[i]) - prefix for i in idx)
        ids = torch.full((len(idx), prefix + width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        ids[:, :prefix] = torch.tensor(encoded[0][:prefix], dtype=torch.long)
        mask[:, :prefix] = 1
        for row, i in enumerate(idx):
            suffix = encoded[i][prefix:]
            ids[row, prefix + width - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
            mask[row, prefix + width - len(suffix) :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "use_cache": True,
            "pad_token_id": pad,
            "eos_token_id": sorted(stop_ids),
        }
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(idx))
            kwargs[cache_kwarg(type(model))] = cache
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(seed * 1_000_003 + start)
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), **kwargs)
        new = out[:, ids.shape[1] :]
        for row, i in enumerate(idx):
            tokens = new[row].tolist()
            n = len(tokens)
            for pos, tok in enumerate(tokens):
                if tok in stop_ids:
                    n = pos
                    break
            results[i] = (tokenizer.decode(tokens[:n], skip_special_tokens=True).strip(), n)
        bar.update(len(idx))
    bar.close()
    return results


@GENERATION_BACKENDS.register("hf")
class HFBackend(Backend):
    """In-process generation with a loaded transformers model (and its peft adapter, if any)."""

    def __init__(self, model, tokenizer, batch_size: int = 16, reuse_prefix: bool = True) -> None:
        self.model, self.tokenizer, self.batch_size, self.reuse_prefix = model, tokenizer, batch_size, reuse_prefix

    def generate(self, texts: Sequence[str], sampling: Sampling, seed: int) -> list[tuple[str, int | None]]:
        return generate_texts(
            self.model, self.tokenizer, texts, sampling, seed=seed, batch_size=self.batch_size,
            reuse_prefix=self.reuse_prefix,
        )  # fmt: skip
