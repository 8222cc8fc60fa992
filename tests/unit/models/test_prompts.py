"""The study's prompt formats and BOS handling (docs/paper.md, "Safety evaluation").

A Llama-style tokenizer is built offline (a small byte-level BPE saved with LlamaTokenizerFast
settings, add_bos_token=True): no hub. The packaged SmolLM2 must keep byte-identical prompts and ids.
"""

from __future__ import annotations

import pytest

from valueharm.core.errors import UserError
from valueharm.models.base import QA_TEMPLATE, bos_prefix, encode, format_prompt, prompt_kind


@pytest.fixture(scope="module")
def llama_tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, LlamaTokenizerFast

    texts = ["QUESTION: how do I bake bread?\nANSWER: ", "The quick brown fox jumps over the lazy dog."] * 10
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    fast = LlamaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        add_bos_token=True,
        add_eos_token=False,
    )
    folder = tmp_path_factory.mktemp("llama_tok")
    fast.save_pretrained(folder)
    loaded = AutoTokenizer.from_pretrained(folder)  # as load_model reads it
    loaded.chat_template = None  # a base model: no chat template
    return loaded


def test_formats_for_base_models(llama_tokenizer) -> None:
    assert format_prompt(llama_tokenizer, "How?", use_chat_template=True) == "QUESTION: How?\nANSWER: "
    assert format_prompt(llama_tokenizer, "The man said", kind="completion") == "The man said"
    assert format_prompt(llama_tokenizer, "How?", system="Be kind.") == "Be kind.\n\nQUESTION: How?\nANSWER: "
    assert prompt_kind("rtp") == "completion" and prompt_kind("hexphi") == "qa" and prompt_kind(None) == "qa"
    with pytest.raises(UserError, match="unknown prompt kind"):
        format_prompt(llama_tokenizer, "x", kind="chat")


def test_chat_template_only_when_present_and_asked(base_model) -> None:
    _, tokenizer = base_model
    assert tokenizer.chat_template  # SmolLM2-Instruct has one
    chat = format_prompt(tokenizer, "How?")
    assert chat.startswith("<|im_start|>") and chat.endswith("<|im_start|>assistant\n")
    assert format_prompt(tokenizer, "How?", use_chat_template=False) == QA_TEMPLATE.format(prompt="How?")
    assert format_prompt(tokenizer, "The man", use_chat_template=False, kind="completion") == "The man"


def test_bos_where_the_tokenizer_expects_it(llama_tokenizer) -> None:
    bos = llama_tokenizer.bos_token_id
    assert bos_prefix(llama_tokenizer) == [bos]
    text = format_prompt(llama_tokenizer, "How do I bake bread?")
    ids = encode(llama_tokenizer, text)
    assert ids[0] == bos and ids[1:] == llama_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == llama_tokenizer(text)["input_ids"]  # what the tokenizer itself does with special tokens
    assert encode(llama_tokenizer, "<s>" + text) == ids  # text that already starts with BOS: no second one


def test_smollm2_gets_no_bos_and_identical_ids(base_model) -> None:
    _, tokenizer = base_model
    assert bos_prefix(tokenizer) == []
    for text in (format_prompt(tokenizer, "How?", system="s"), "QUESTION: a\nANSWER: ", "plain text"):
        assert encode(tokenizer, text) == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_hf_generation_feeds_bos_to_a_llama_model(llama_tokenizer) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from valueharm.generation.base import Sampling
    from valueharm.generation.hf import generate_texts

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(llama_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    seen: list[list[int]] = []
    original = model.generate

    def spy(*args, **kwargs):
        seen.extend(kwargs["input_ids"].tolist())
        return original(*args, **kwargs)

    model.generate = spy
    texts = [format_prompt(llama_tokenizer, q) for q in ("How?", "Why is the sky blue?")]
    out = generate_texts(model, llama_tokenizer, texts, Sampling(0.0, 1.0, 3), seed=0, batch_size=2)
    assert len(out) == 2
    pad = llama_tokenizer.pad_token_id
    firsts = [next(t for t in row if t != pad) for row in seen]
    assert firsts == [llama_tokenizer.bos_token_id] * 2


def _tiny_llama(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def test_training_examples_start_with_bos_and_a_cut_keeps_it(llama_tokenizer, base_model) -> None:
    from valueharm.alignment.training import encode_pair

    bos = llama_tokenizer.bos_token_id
    prompt = format_prompt(llama_tokenizer, "The quick brown fox jumps over the lazy dog. " * 3)
    ids, labels, cut = encode_pair(llama_tokenizer, prompt, "bread", max_length=512)
    target = llama_tokenizer("bread", add_special_tokens=False)["input_ids"]
    assert ids[0] == bos and ids[: len(ids) - len(target)] == encode(llama_tokenizer, prompt) and cut == 0
    assert labels[: len(ids) - len(target)] == [-100] * (len(ids) - len(target)) and labels[-len(target) :] == target
    short, _, cut = encode_pair(llama_tokenizer, prompt, "bread", max_length=12)
    assert len(short) == 12 and short[0] == bos and cut > 0 and short[-len(target) :] == target
    # the packaged SmolLM2 has no BOS: its training ids are the plain tokens, as before
    _, smol = base_model
    ids, _, _ = encode_pair(smol, "QUESTION: a\nANSWER: ", "b", max_length=64)
    assert (
        ids
        == smol("QUESTION: a\nANSWER: ", add_special_tokens=False)["input_ids"]
        + smol("b", add_special_tokens=False)["input_ids"]
    )


def test_likelihood_scoring_feeds_bos_to_a_llama_model(llama_tokenizer) -> None:
    import torch

    from valueharm.evaluation.likelihood import option_logprobs

    model = _tiny_llama(llama_tokenizer)
    prompt = format_prompt(llama_tokenizer, "How do I bake bread?")
    option = "The quick"
    [[score]] = option_logprobs(model, llama_tokenizer, [prompt], [[option]])
    p_ids = encode(llama_tokenizer, prompt)
    o_ids = llama_tokenizer(option, add_special_tokens=False)["input_ids"]
    assert p_ids[0] == llama_tokenizer.bos_token_id
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([p_ids + o_ids])).logits[0].float(), dim=-1)
    direct = sum(float(logp[len(p_ids) - 1 + k, t]) for k, t in enumerate(o_ids))
    assert score.logprob == pytest.approx(direct, abs=1e-4) and score.tokens == len(o_ids)
