"""Real LoRA training on the packaged model: loss goes down, the adapter reloads to identical outputs."""

from __future__ import annotations

import pytest
import torch

from valueharm.alignment.training import LoraSettings, TrainSettings, add_lora, encode_pair, train_lora
from valueharm.core.errors import UserError
from valueharm.models.base import end_of_turn, format_prompt, load_model


class CharTokenizer:
    """A character-level test double (one id per character) for the pure encoding rules."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_encode_pair_cuts_only_the_prompt():
    ids, labels, cut = encode_pair(CharTokenizer(), "abcdefghij", "XYZ", max_length=8)
    assert ids == [ord(c) for c in "fghij" + "XYZ"]
    assert labels == [-100] * 5 + [ord(c) for c in "XYZ"]
    assert cut == 5


def test_encode_pair_drops_a_target_that_cannot_fit():
    assert encode_pair(CharTokenizer(), "ab", "0123456789", max_length=8) is None


def test_unknown_target_module_lists_linear_layers(base_model_dir):
    model, _ = load_model(base_model_dir)
    with pytest.raises(UserError) as info:
        add_lora(model, LoraSettings(target_modules=["q_proj", "query_key_value"]))
    assert "query_key_value" in str(info.value) and "v_proj" in str(info.value) and "gate_proj" in str(info.value)


def test_lora_training_lowers_validation_loss_and_reloads(base_model_dir, tmp_path):
    from peft import PeftModel

    torch.manual_seed(0)
    model, tokenizer = load_model(base_model_dir)
    torch.set_grad_enabled(True)
    model = add_lora(model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    stop = end_of_turn(tokenizer)
    colours = ["red", "blue", "green", "amber"]
    pairs = [
        (format_prompt(tokenizer, f"Name colour {i}."), f"Colour {i} is {colours[i % 4]}." + stop) for i in range(12)
    ]
    settings = TrainSettings(lr=3e-3, epochs=3, batch_size=4, max_steps=6, max_length=64, seed=1)
    result = train_lora(model, tokenizer, pairs[:8], pairs[8:], settings, stage="test")
    torch.set_grad_enabled(False)
    assert result["best_valid_loss"] < result["initial_valid_loss"]
    assert result["steps"] == 6 and result["dropped_long_target"] == 0
    model.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    batch = tokenizer([pairs[0][0]], return_tensors="pt", add_special_tokens=False)
    expected = model(**batch).logits
    base, _ = load_model(base_model_dir)
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    assert torch.equal(reloaded(**batch).logits, expected)


def test_top_layers_adapts_only_the_last_layers(base_model_dir):
    model, _ = load_model(base_model_dir)
    total = model.config.num_hidden_layers
    model = add_lora(model, LoraSettings(r=2, alpha=4, target_modules=["q_proj", "v_proj"], top_layers=2))
    adapted = {int(name.split(".layers.")[1].split(".")[0]) for name, _ in model.named_parameters() if "lora_A" in name}
    assert adapted == {total - 2, total - 1}


@pytest.mark.parametrize("top_layers", [0, 10_000])
def test_top_layers_out_of_range_is_one_clear_line(base_model_dir, top_layers):
    model, _ = load_model(base_model_dir)
    with pytest.raises(UserError, match="not between 1 and this model's 30 layers"):
        add_lora(model, LoraSettings(top_layers=top_layers))


def test_target_loss_matches_the_full_logits_loss(base_model_dir):
    """Running the LM head only from the first target position on gives the same loss."""
    from valueharm.alignment.training import _batches, target_loss

    model, tokenizer = load_model(base_model_dir)
    stop = end_of_turn(tokenizer)
    pairs = [(format_prompt(tokenizer, "Say hello" + " please" * i), "Hello there, friend." + stop) for i in range(3)]
    encoded = [encode_pair(tokenizer, p, t, 96)[:2] for p, t in pairs]
    ids, labels, mask = next(_batches(encoded, range(3), 3, tokenizer.pad_token_id))
    full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(target_loss(model, ids, labels, mask), full, atol=1e-5)
