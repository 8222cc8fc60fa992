"""`model.dtype`: the auto choice (AMX present / absent, CUDA), explicit names, the one-time warning, and
bf16 against fp32 greedy answers on the packaged model."""

from __future__ import annotations

import warnings

import pytest
import torch

from valueharm.core.errors import UserError
from valueharm.generation.hf import Sampling, generate_texts
from valueharm.models import base as models

AMX = {"amx_bf16": True, "amx_tile": True, "avx512_bf16": True, "avx2": True}
AVX2 = {"amx_bf16": False, "amx_tile": False, "avx512_bf16": False, "avx2": True}
AVX512_BF16 = {"amx_bf16": False, "avx512_bf16": True, "avx2": True}


@pytest.mark.parametrize(
    "requested, device, caps, expected",
    [
        ("auto", "cpu", AMX, "bfloat16"),
        ("auto", "cpu", AVX2, "float32"),
        ("auto", "cpu", AVX512_BF16, "float32"),  # bf16 pays off through AMX tiles, not AVX512-BF16 alone
        ("auto", "cpu", {}, "float32"),  # nothing known: the safe, bit-exact default
        (None, "cpu", AVX2, "float32"),
        ("auto", "cuda", {}, "bfloat16"),
        ("auto", "cuda", {"cuda_bf16": False}, "float16"),
        ("float32", "cpu", AMX, "float32"),  # an explicit name wins over the hardware
        ("fp32", "cuda", {}, "float32"),
        ("bf16", "cpu", AVX2, "bfloat16"),
        ("bfloat16", "cpu", AMX, "bfloat16"),
        ("fp16", "cpu", AVX2, "float16"),
    ],
)
def test_decide_dtype(requested, device, caps, expected):
    assert models.decide_dtype(requested, device, caps) == expected


def test_unknown_dtype_is_one_line_naming_the_choices():
    with pytest.raises(UserError) as info:
        models.check_dtype("int3")
    assert "int3" in str(info.value) and all(name in str(info.value) for name in models.DTYPE_NAMES)
    with pytest.raises(UserError, match="float32"):
        models.pick_dtype("int3", "cpu")
    assert all(models.check_dtype(name) == name for name in models.DTYPE_NAMES)


def test_auto_on_this_machine_follows_its_amx_flag():
    caps = models.cpu_capabilities()
    assert "amx_bf16" in caps and "avx2" in caps
    expected = torch.bfloat16 if caps["amx_bf16"] else torch.float32
    assert models.pick_dtype("auto", "cpu") is expected


def test_cpu_capabilities_fall_back_to_proc_cpuinfo(monkeypatch):
    monkeypatch.setattr(torch._C._cpu, "_get_cpu_capability", lambda: (_ for _ in ()).throw(RuntimeError()))
    caps = models.cpu_capabilities()
    assert set(caps) >= {"amx_bf16", "avx512_bf16", "avx2"}


def test_emulated_bf16_warns_once(monkeypatch):
    monkeypatch.setattr(models, "cpu_capabilities", lambda: dict(AVX2, cpu_name="test CPU"))
    monkeypatch.setattr(models, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert models.pick_dtype("bfloat16", "cpu") is torch.bfloat16
        assert models.pick_dtype("bf16", "cpu") is torch.bfloat16
        assert models.pick_dtype("float32", "cpu") is torch.float32
    slow = [w for w in caught if "without native bfloat16" in str(w.message)]
    assert len(slow) == 1 and "test CPU" in str(slow[0].message)


def test_native_bf16_does_not_warn(monkeypatch):
    monkeypatch.setattr(models, "cpu_capabilities", lambda: dict(AMX))
    monkeypatch.setattr(models, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert models.pick_dtype("auto", "cpu") is torch.bfloat16
    assert not [w for w in caught if "native" in str(w.message)]


PROMPTS = ["What is the capital of France?", "Name a primary colour.", "What is 2 plus 2?", "Say hello."]


def test_bf16_and_fp32_give_the_same_greedy_answers(base_model_dir, base_model):
    """Tolerance: the greedy answers (12 new tokens) agree on their first token for every prompt and
    exactly for at least 2 of the 4 prompts; bf16 rounding flips near-tie tokens (measured: "The primary
    colours are" vs "The primary colour is" at token 4 on one CPU; "Hello there, ..." vs "Hello! ..." at
    token 2 on an AMD EPYC with native AVX-512-BF16)."""
    fp32_model, tokenizer = base_model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated bf16 on CPUs without it: slow, still correct
        bf16_model, _ = models.load_model(base_model_dir, "bfloat16")
    assert models.dtype_name(bf16_model) == "bfloat16" and models.dtype_name(fp32_model) == "float32"
    texts = [models.format_prompt(tokenizer, p) for p in PROMPTS]
    sampling = Sampling(temperature=0, top_p=1, max_new_tokens=12)
    fp32 = generate_texts(fp32_model, tokenizer, texts, sampling, batch_size=4)
    bf16 = generate_texts(bf16_model, tokenizer, texts, sampling, batch_size=4)
    assert all(n > 0 for _, n in bf16)
    for (a, _), (b, _) in zip(fp32, bf16):
        assert tokenizer(a)["input_ids"][:1] == tokenizer(b)["input_ids"][:1], (a, b)
    assert sum(a == b for (a, _), (b, _) in zip(fp32, bf16)) >= 2, list(zip(fp32, bf16))


def test_lora_on_a_bf16_base_trains_in_fp32(base_model_dir):
    """Frozen base in bf16, LoRA weights (and so AdamW state) in fp32; the loss is finite and falls."""
    from valueharm.alignment.training import LoraSettings, TrainSettings, add_lora, train_lora

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model, tokenizer = models.load_model(base_model_dir, "bfloat16")
    torch.set_grad_enabled(True)
    try:
        model = add_lora(
            model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"], top_layers=4)
        )
        lora = [p for n, p in model.named_parameters() if "lora_" in n]
        assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora)
        assert all(p.dtype == torch.bfloat16 for n, p in model.named_parameters() if "lora_" not in n)
        stop = models.end_of_turn(tokenizer)
        pairs = [(models.format_prompt(tokenizer, f"Colour {i}?"), f"Colour {i} is red." + stop) for i in range(4)]
        settings = TrainSettings(lr=3e-3, epochs=3, batch_size=4, max_steps=3, max_length=48, seed=0)
        result = train_lora(model, tokenizer, pairs, pairs, settings, stage="bf16")
    finally:
        torch.set_grad_enabled(False)
    assert result["best_valid_loss"] < result["initial_valid_loss"]
