"""Shared-prefix training steps: a batch's common instruction prefix runs once, and every row reuses its
keys and values, gradients included.

Why: in the default's questionnaire stage (stage 2) every example starts with the same chat header and
rating instruction. With SmolLM2's template that is 68 of the 140-156 prompt tokens of every row (plus an
18-20 token target), so a batch of 8 computes those 68 tokens eight times. Here they are computed once
(batch 1) and their per-layer keys and values are repeated for the 8 rows; each row then runs only its own
suffix (the statement, the question, the target) attending to them. Autograd sums the 8 rows' gradients
into the one prefix pass, so the loss and its LoRA gradients are those of the padded batch up to float
rounding (`tests/unit/alignment/test_shared_prefix.py` checks 1e-4 in fp32).

`shared_prefix_loss(model, rows, pad_id)` takes one step's encoded (ids, labels) rows, as
`training.make_batches` does, and returns the mean (or summed) target-token loss. A batch whose rows share
fewer than `min_prefix` prompt tokens takes the ordinary padded path.

Used as `train.stage*.batching: shared_prefix` (`training.step_batches` / `batch_loss`); README states the
speed-up.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_PREFIX = 8  # shorter common prefixes are not worth a second forward call


def common_prefix_length(rows: Sequence[tuple[Sequence[int], Sequence[int]]]) -> int:
    """Tokens every row's prompt starts with, leaving each row at least its last prompt token, whose
    logit predicts the first target token (so the prefix itself never needs logits)."""
    if not rows:
        return 0
    prompt_lengths = [sum(1 for label in labels if label == -100) for _, labels in rows]
    limit = min(prompt_lengths) - 1
    first = rows[0][0]
    n = 0
    while n < limit and all(ids[n] == first[n] for ids, _ in rows):
        n += 1
    return max(n, 0)


def _repeat_cache(cache, batch: int):
    """The prefix's per-layer keys and values repeated for `batch` rows (a differentiable copy)."""
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(batch)
        return cache
    raise TypeError(
        f"shared-prefix training needs a transformers Cache with batch_repeat_interleave, got {type(cache)}"
    )


def shared_prefix_loss(
    model,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    reduction: str = "mean",
    min_prefix: int = MIN_PREFIX,
):
    """Cross-entropy on target tokens of `rows` (encoded (ids, labels), labels -100 on the prompt), with the
    rows' common prompt prefix computed once. Equal to `training.target_loss` on the padded batch."""
    import torch

    from valueharm.alignment.training import _batches, target_loss
    from valueharm.models.base import cache_kwarg

    prefix = common_prefix_length(rows)
    if prefix < min_prefix or len(rows) < 2:
        ((ids, labels, mask),) = list(_batches(rows, range(len(rows)), len(rows), pad_id))
        ids, labels, mask = (t.to(model.device) for t in (ids, labels, mask))
        return target_loss(model, ids, labels, mask, reduction=reduction)
    head = torch.tensor([list(rows[0][0][:prefix])], dtype=torch.long, device=model.device)
    out = model(input_ids=head, use_cache=True)
    cache = _repeat_cache(getattr(out, "cache", None) or out.past_key_values, len(rows))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    tails = [(list(ids[prefix:]), list(labels[prefix:])) for ids, labels in rows]
    ((ids, labels, mask),) = list(_batches(tails, range(len(tails)), len(tails), pad_id))
    ids, labels, mask = (t.to(model.device) for t in (ids, labels, mask))
    width = ids.size(1)
    attention = torch.cat([torch.ones(len(rows), prefix, dtype=mask.dtype, device=mask.device), mask], dim=1)
    positions = torch.arange(prefix, prefix + width, device=ids.device).unsqueeze(0).expand(len(rows), -1)
    has_target = (labels != -100).any(dim=0)
    first = int(has_target.float().argmax()) if bool(has_target.any()) else width - 1
    keep = width - max(first - 1, 0)
    logits = model(
        input_ids=ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=True,
        **{cache_kwarg(type(base)): cache},
        logits_to_keep=keep,
    ).logits
    logits = logits[:, -keep:-1].float()
    target = labels[:, width - keep + 1 :]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction=reduction
    )
