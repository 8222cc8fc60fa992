"""In-process generation with transformers: batched, left-padded, KV cache, seeded.

Prompts are sorted by length into batches (less padding), answers are returned in input order.
Greedy decoding when temperature is 0; otherwise sampling with a per-batch seed derived from
the run's seed, so results do not depend on which other prompts share the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.1
    top_p: float = 0.75
    max_new_tokens: int = 64

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def generate_texts(model, tokenizer, texts: Sequence[str], sampling: Sampling, seed: int = 0,
                   batch_size: int = 16) -> list[tuple[str, int]]:
    """Generate continuations of fully formatted prompt texts; returns (answer, tokens generated)."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    results: list[tuple[str, int]] = [("", 0)] * len(texts)
    stop_ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    if im_end is not None:
        stop_ids.add(im_end)
    stop_ids.discard(None)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_new_tokens, "use_cache": True,
                                  "pad_token_id": tokenizer.pad_token_id, "eos_token_id": sorted(stop_ids)}
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(seed * 1_000_003 + start)
        with torch.no_grad():
            out = model.generate(**batch, **kwargs)
        new = out[:, batch["input_ids"].shape[1]:]
        for row, i in enumerate(idx):
            tokens = new[row].tolist()
            n = len(tokens)
            for pos, tok in enumerate(tokens):
                if tok in stop_ids:
                    n = pos
                    break
            results[i] = (tokenizer.decode(tokens[:n], skip_special_tokens=True).strip(), n)
    return results


def sampling_dict(sampling: Sampling) -> dict[str, Any]:
    return asdict(sampling)
