"""Multiple-choice scoring by likelihood, the way lm-evaluation-harness scores it: no decoding.

Generation plus parsing measures what a model *writes*, and a 135M model rarely writes a
parseable number (2 of 20 answers in the first default run); the likelihood of each answer
measures what the model *holds*, for every item, with no parse failure.

`option_logprobs` runs each prompt through the model once and reuses its KV cache for all of
its options (the options of one prompt are one token trie, one forward pass on that cache); a
token prefix shared by every prompt (the chat header, the questionnaire's instructions, a role-play
system prompt) is run once for all prompts. Each option's log-likelihood is the sum over its
tokens of log p(token | prompt, earlier option tokens). Prompt and option are tokenised
separately, as training tokenises prompt and target (`training.encode_pair`): the prompt through
`models.base.encode` (BOS where the tokenizer expects one), the options as plain tokens.

Views on one questionnaire item (`item_views`), each a distribution over the answers 1..6:
  * `forced`: the options are the full VIM answers naming the item's keyed value,
    "Because I think {keyed value} is {importance} to me, my answer is {s}.";
  * `marginal`: the options are the VIM answers for all ten values (60 options) and the
    probability of answer s sums over the value named: the likelihood version of letting the
    model choose which value the portrait is about. `p_keyed` is the probability mass on the
    keyed value;
  * `bare`: the options are the bare numbers "1".."6", for models not trained in VIM form.
Each view normalises over its options (softmax of log-likelihoods), in two variants as
lm-eval's acc / acc_norm: `raw` (summed log-likelihood) and `norm` (log-likelihood divided by
the option's length in characters). Per view and variant: the probabilities, the expected score
sum_s s p(s), the argmax and the entropy (nats; ln 6 = 1.79 is uniform).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from valueharm.alignment.vim import qa_target
from valueharm.core.values import VALUES

__all__ = [
    "SCALE",
    "VIEWS",
    "VARIANTS",
    "OptionScore",
    "item_options",
    "option_logprobs",
    "distribution",
    "item_views",
    "score_items",
]

SCALE = tuple(range(1, 7))
VIEWS = ("forced", "marginal", "bare")
VARIANTS = ("raw", "norm")


@dataclass(frozen=True)
class OptionScore:
    """One option's summed log-likelihood, its token count and its length in characters."""

    logprob: float
    tokens: int
    chars: int


def item_options() -> list[tuple[str | None, int, str]]:
    """(value or None for bare, answer, text) for every option of one item: 60 VIM answers (values in
    canonical order, answers 1..6), then the 6 bare numbers. The same for every item."""
    vim = [(v, s, qa_target(v, s)) for v in VALUES for s in SCALE]
    return vim + [(None, s, str(s)) for s in SCALE]


def _forward(model, ids, cache=None, mask=None, positions=None):
    from valueharm.models.base import cache_kwarg

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    kwargs: dict[str, Any] = {"use_cache": True}
    if cache is not None:
        kwargs[cache_kwarg(type(base))] = cache
    if mask is not None:
        kwargs["attention_mask"] = mask
    if positions is not None:
        kwargs["position_ids"] = positions
    out = model(input_ids=ids, **kwargs)
    return out.logits, (getattr(out, "cache", None) or out.past_key_values)


def _trie(sequences: Sequence[Sequence[int]]) -> tuple[list[int], list[int], list[int], list[list[int]]]:
    """Flatten the token trie of `sequences`: (token, parent node or -1, depth) per node in creation
    order (a parent always before its children), and each sequence's node path."""
    tokens: list[int] = []
    parents: list[int] = []
    depths: list[int] = []
    children: dict[tuple[int, int], int] = {}
    paths = []
    for seq in sequences:
        node, path = -1, []
        for tok in seq:
            key = (node, int(tok))
            if key not in children:
                children[key] = len(tokens)
                tokens.append(int(tok))
                parents.append(node)
                depths.append(depths[node] + 1 if node >= 0 else 0)
            node = children[key]
            path.append(node)
        paths.append(path)
    return tokens, parents, depths, paths


def option_logprobs(
    model, tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]]
) -> list[list[OptionScore]]:
    """For each fully formatted prompt, the log-likelihood of each of its options (see module doc).

    The options of one prompt share prefixes ("Because I think", a value's name), so they run as
    one token trie in a single forward pass on the prompt's KV cache: each trie node attends to
    the prompt and to its own ancestors only (a 4D attention mask; positions are the prompt length
    plus the node's depth), which gives every option exactly the logits of its own uncached
    forward pass at about half the tokens of one row per option. Deterministic; no decoding.
    """
    import torch

    from valueharm.generation.hf import shared_prefix_length
    from valueharm.models.base import encode

    if len(prompts) != len(options):
        raise ValueError("one option list per prompt")
    device, dtype = model.device, model.dtype
    enc = [encode(tokenizer, p) for p in prompts]  # BOS first where the tokenizer expects it, as in training
    opt_ids = [[list(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in opts] for opts in options]
    if any(not o for opts in opt_ids for o in opts):
        raise ValueError("an option encodes to no token")
    shared = shared_prefix_length(enc) if len(enc) > 1 else 0
    results: list[list[OptionScore]] = []
    with torch.no_grad():
        shared_cache = None
        if shared:
            _, shared_cache = _forward(model, torch.tensor([enc[0][:shared]], device=device))
        for p_ids, o_ids, texts in zip(enc, opt_ids, options):
            cache = copy.deepcopy(shared_cache) if shared_cache is not None else None
            logits, cache = _forward(model, torch.tensor([p_ids[shared:]], device=device), cache)
            first = torch.log_softmax(logits[0, -1].float(), dim=-1)  # next-token log-probs after the prompt
            past = len(p_ids)
            tokens, parents, depths, paths = _trie(o_ids)
            n = len(tokens)
            allowed = torch.zeros((n, past + n), dtype=torch.bool)
            allowed[:, :past] = True
            for j in range(n):
                allowed[j, past + j] = True
                if parents[j] >= 0:
                    allowed[j, past : past + n] |= allowed[parents[j], past : past + n]
            mask = torch.zeros((1, 1, n, past + n), dtype=dtype)
            mask[0, 0].masked_fill_(~allowed, torch.finfo(dtype).min)
            positions = torch.tensor([[past + d for d in depths]], device=device)
            out_logits, _ = _forward(
                model, torch.tensor([tokens], device=device), cache, mask.to(device), positions=positions
            )
            logp = torch.log_softmax(out_logits[0].float(), dim=-1)
            scores = []
            for o, path, text in zip(o_ids, paths, texts):
                total = float(first[o[0]])
                if len(o) > 1:
                    at = torch.tensor(path[:-1], device=device)
                    total += float(logp[at, torch.tensor(o[1:], device=device)].sum())
                scores.append(OptionScore(total, len(o), len(text)))
            results.append(scores)
    return results


def distribution(logliks: Sequence[float]) -> list[float]:
    """Softmax over options (log-sum-exp stable)."""
    x = np.asarray(logliks, dtype=np.float64)
    x = np.exp(x - x.max())
    return (x / x.sum()).tolist()


def _summary(probs: Sequence[float]) -> dict[str, Any]:
    p = np.asarray(probs, dtype=np.float64)
    entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    return {
        "probs": [float(x) for x in p],
        "expected": float(np.dot(np.arange(1, 7), p)),
        "argmax": int(np.argmax(p)) + 1,
        "entropy": entropy,
    }


def item_views(keyed: str, scores: Sequence[OptionScore]) -> dict[str, Any]:
    """The three views (forced, marginal, bare) x two variants (raw, norm) of one item, from the
    scores of `item_options()` in order; marginal also gives `p_keyed`."""
    options = item_options()
    if len(scores) != len(options):
        raise ValueError(f"expected {len(options)} option scores, got {len(scores)}")
    vim = {(v, s): sc for (v, s, _), sc in zip(options, scores) if v is not None}
    bare = [sc for (v, _, _), sc in zip(options, scores) if v is None]
    out: dict[str, Any] = {}
    for variant in VARIANTS:

        def ll(sc: OptionScore) -> float:
            return sc.logprob if variant == "raw" else sc.logprob / max(sc.chars, 1)

        forced = distribution([ll(vim[(keyed, s)]) for s in SCALE])
        joint = np.asarray(distribution([ll(vim[(v, s)]) for v in VALUES for s in SCALE])).reshape(len(VALUES), 6)
        marginal = _summary(joint.sum(axis=0).tolist())
        marginal["p_keyed"] = float(joint[VALUES.index(keyed)].sum())
        marginal["p_values"] = {v: float(joint[i].sum()) for i, v in enumerate(VALUES)}
        out.setdefault("forced", {})[variant] = _summary(forced)
        out.setdefault("marginal", {})[variant] = marginal
        out.setdefault("bare", {})[variant] = _summary(distribution([ll(sc) for sc in bare]))
    return out


def score_items(model, tokenizer, prompts: Sequence[str], keyed: Sequence[str]) -> list[dict]:
    """`item_views` for each (formatted prompt, keyed value)."""
    texts = [t for _, _, t in item_options()]
    scored = option_logprobs(model, tokenizer, prompts, [texts] * len(prompts))
    return [item_views(k, s) for k, s in zip(keyed, scored)]


def entropy_uniform() -> float:
    """ln 6: the entropy of a uniform answer."""
    return math.log(6)
