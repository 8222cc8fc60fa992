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
    model, _ = load_model(base_model_dir, "float32")
    with pytest.raises(UserError) as info:
        add_lora(model, LoraSettings(target_modules=["q_proj", "query_key_value"]))
    assert "query_key_value" in str(info.value) and "v_proj" in str(info.value) and "gate_proj" in str(info.value)


def train_colours(base_model_dir, autocast: str | None = None):
    """Six LoRA steps on twelve colour pairs (fp32 weights; `autocast` as train_lora takes it):
    (result, trained model, tokenizer, pairs)."""
    torch.manual_seed(0)
    model, tokenizer = load_model(base_model_dir, "float32")
    torch.set_grad_enabled(True)
    try:
        model = add_lora(model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
        stop = end_of_turn(tokenizer)
        colours = ["red", "blue", "green", "amber"]
        pairs = [
            (format_prompt(tokenizer, f"Name colour {i}."), f"Colour {i} is {colours[i % 4]}." + stop)
            for i in range(12)
        ]
        settings = TrainSettings(lr=3e-3, epochs=3, batch_size=4, max_steps=6, max_length=64, seed=1)
        result = train_lora(model, tokenizer, pairs[:8], pairs[8:], settings, stage="test", autocast=autocast)
    finally:
        torch.set_grad_enabled(False)
    return result, model, tokenizer, pairs


def lora_weights(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_lora_training_lowers_validation_loss_and_reloads(base_model_dir, tmp_path):
    from peft import PeftModel

    result, model, tokenizer, pairs = train_colours(base_model_dir)
    assert result["best_valid_loss"] < result["initial_valid_loss"]
    assert result["steps"] == 6 and result["dropped_long_target"] == 0
    model.save_pretrained(tmp_path / "adapter", safe_serialization=True)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    batch = tokenizer([pairs[0][0]], return_tensors="pt", add_special_tokens=False)
    expected = model(**batch).logits
    base, _ = load_model(base_model_dir, "float32")
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    assert torch.equal(reloaded(**batch).logits, expected)


def test_top_layers_adapts_only_the_last_layers(base_model_dir):
    model, _ = load_model(base_model_dir, "float32")
    total = model.config.num_hidden_layers
    model = add_lora(model, LoraSettings(r=2, alpha=4, target_modules=["q_proj", "v_proj"], top_layers=2))
    adapted = {int(name.split(".layers.")[1].split(".")[0]) for name, _ in model.named_parameters() if "lora_A" in name}
    assert adapted == {total - 2, total - 1}


@pytest.mark.parametrize("top_layers", [0, 10_000])
def test_top_layers_out_of_range_is_one_clear_line(base_model_dir, top_layers):
    model, _ = load_model(base_model_dir, "float32")
    with pytest.raises(UserError, match="not between 1 and this model's 30 layers"):
        add_lora(model, LoraSettings(top_layers=top_layers))


def test_target_loss_matches_the_full_logits_loss(base_model_dir):
    """Running the LM head only from the first target position on gives the same loss."""
    from valueharm.alignment.training import _batches, target_loss

    model, tokenizer = load_model(base_model_dir, "float32")
    stop = end_of_turn(tokenizer)
    pairs = [(format_prompt(tokenizer, "Say hello" + " please" * i), "Hello there, friend." + stop) for i in range(3)]
    encoded = [encode_pair(tokenizer, p, t, 96)[:2] for p, t in pairs]
    ids, labels, mask = next(_batches(encoded, range(3), 3, tokenizer.pad_token_id))
    full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(target_loss(model, ids, labels, mask), full, atol=1e-5)


def test_pack_rows_first_fit_decreasing():
    from valueharm.alignment.training import pack_rows

    rows = pack_rows([5, 3, 7, 2, 4], capacity=8)
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]
    assert all(sum([5, 3, 7, 2, 4][i] for i in row) <= 8 for row in rows)
    assert rows == [[2], [0, 1], [4, 3]]  # 7 alone; 5+3; 4+2
    assert pack_rows([9, 1], capacity=8) == [[0], [1]]  # an over-long item gets its own row


def test_packed_rows_restart_positions_and_drop_cross_sequence_labels():
    from valueharm.alignment.training import make_batches

    encoded = [([1, 2, 3], [-100, 2, 3]), ([4, 5], [-100, 5]), ([6, 7, 8, 9], [-100, -100, 8, 9])]
    ((ids, labels, real, positions),) = list(make_batches(encoded, [0, 1, 2], 3, 0, "packed", capacity=7))
    assert ids.tolist() == [[1, 2, 3, 6, 7, 8, 9], [4, 5, 0, 0, 0, 0, 0]]  # rows in input order
    assert positions.tolist() == [[0, 1, 2, 0, 1, 2, 3], [0, 1, 0, 1, 2, 3, 4]]
    assert labels.tolist() == [[-100, 2, 3, -100, -100, 8, 9], [-100, 5, -100, -100, -100, -100, -100]]
    assert real.sum() == 9


def test_bucketed_order_is_a_permutation_with_less_padding():
    from valueharm.alignment.training import bucketed_order

    lengths = [(i * 37) % 50 + 1 for i in range(64)]
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0)).tolist()
    bucketed = bucketed_order(lengths, order, 4, torch.Generator().manual_seed(0))
    assert sorted(bucketed) == list(range(64))

    def padding(o):
        return sum(
            max(lengths[i] for i in o[k : k + 4]) * 4 - sum(lengths[i] for i in o[k : k + 4]) for k in range(0, 64, 4)
        )

    assert padding(bucketed) < padding(order) / 3
    assert bucketed == bucketed_order(lengths, order, 4, torch.Generator().manual_seed(0))  # deterministic


def test_unknown_batching_is_one_clear_line(base_model):
    model, tokenizer = base_model
    with pytest.raises(UserError, match="padded, packed, bucketed"):
        train_lora(model, tokenizer, [("a", "b")], [], TrainSettings(batching="ragged"), stage="t")


def _varied_pairs(tokenizer, n: int = 6):
    stop = end_of_turn(tokenizer)
    return [
        (format_prompt(tokenizer, "Tell me" + " more" * (3 * i)), "Fine, here it is" + " again" * (i % 3) + "." + stop)
        for i in range(n)
    ]


def test_padding_free_loss_equals_padded_loss(base_model):
    """Packed rows and one-row-per-example (no padding at all) give the padded loss within 1e-4 (fp32)."""
    from valueharm.alignment.training import make_batches, target_loss

    model, tokenizer = base_model
    encoded = [encode_pair(tokenizer, p, t, 96)[:2] for p, t in _varied_pairs(tokenizer)]

    def summed(mode, size):
        total, count = 0.0, 0
        for ids, labels, mask, positions in make_batches(encoded, range(6), size, tokenizer.pad_token_id, mode, 96):
            total += float(target_loss(model, ids, labels, mask, reduction="sum", position_ids=positions))
            count += int((labels[:, 1:] != -100).sum())
        return total / count, count

    padded, n_padded = summed("padded", 6)
    packed, n_packed = summed("packed", 6)
    alone, n_alone = summed("padded", 1)
    assert n_padded == n_packed == n_alone
    assert abs(packed - padded) < 1e-4 and abs(alone - padded) < 1e-4


def test_packed_batches_give_the_padded_gradients(base_model_dir):
    """Gradients included: one step's LoRA gradients from packed rows equal the padded ones (fp32 rounding).

    lora_B starts at zero in peft (so lora_A would get no gradient); it is set to small seeded
    values first so that both matrices are checked.
    """
    from valueharm.alignment.training import make_batches, target_loss

    model, tokenizer = load_model(base_model_dir, "float32")
    torch.set_grad_enabled(True)
    try:
        model = add_lora(model, LoraSettings(r=4, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"]))
        gen = torch.Generator().manual_seed(0)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.data = torch.randn(param.shape, generator=gen) * 0.01
        lora = {n: p for n, p in model.named_parameters() if p.requires_grad}
        encoded = [encode_pair(tokenizer, p, t, 128)[:2] for p, t in _varied_pairs(tokenizer, 4)]
        grads = {}
        for mode in ("padded", "packed"):
            ((ids, labels, mask, positions),) = list(
                make_batches(encoded, range(4), 4, tokenizer.pad_token_id, mode, capacity=128)
            )
            if mode == "packed":
                assert ids.size(0) < 4  # the four examples really share rows
            target_loss(model, ids, labels, mask, position_ids=positions).backward()
            grads[mode] = {n: p.grad.detach().clone() for n, p in lora.items()}
            model.zero_grad(set_to_none=True)
    finally:
        torch.set_grad_enabled(False)
    flat = {mode: torch.cat([g.flatten() for g in grads[mode].values()]) for mode in grads}
    assert float(flat["padded"].abs().max()) > 0
    assert float((flat["packed"] - flat["padded"]).norm() / flat["padded"].norm()) < 1e-4


SAVE_SCRIPT = """
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
from valueharm.alignment.training import LoraSettings, add_lora, save_adapter
torch.manual_seed(0)
config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                     num_attention_heads=2, num_key_value_heads=1)
model = add_lora(LlamaForCausalLM(config), LoraSettings(r=2, alpha=4, dropout=0.0,
                 target_modules=["v_proj", "q_proj", "o_proj", "k_proj"]))
save_adapter(model, sys.argv[1])
"""


def test_saved_adapter_config_is_the_same_whatever_the_hash_seed(tmp_path):
    """peft stores target_modules as a set: its saved order followed PYTHONHASHSEED, so one adapter got
    a different adapter_config.json (and DVC hash) from run to run."""
    import json
    import os
    import subprocess
    import sys

    texts = set()
    for seed in ("1", "2", "3"):
        out = tmp_path / f"seed-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(out)], env=env, check=True, capture_output=True)
        texts.add((out / "adapter_config.json").read_text())
        weights = (out / "adapter_model.safetensors").read_bytes()
    assert len(texts) == 1
    assert json.loads(texts.pop())["target_modules"] == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert weights  # safetensors written


@pytest.mark.parametrize(
    ("compute", "device", "expected"),
    [
        ("float32", "cpu", ("float32", None)),
        ("bfloat16", "cpu", ("float32", "bfloat16")),  # measured faster than bf16 weights on an AMX Xeon
        ("float16", "cpu", ("float32", "float16")),
        ("bfloat16", "cuda", ("bfloat16", None)),
        ("float32", "cuda", ("float32", None)),
    ],
)
def test_training_precision_decision(compute, device, expected):
    from valueharm.alignment.training import decide_training_precision

    assert decide_training_precision(compute, device) == expected


def test_prepare_for_training_upcasts_the_served_bf16_weights(base_model_dir):
    """The adapter trains against exactly the rounded weights it is served on: bf16 values, held in fp32."""
    import warnings

    from valueharm.alignment.training import prepare_for_training

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # emulated bf16 on CPUs without it
        model, _ = load_model(base_model_dir, "bfloat16")
    served = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    assert prepare_for_training(model) == "bfloat16"
    weight = model.model.layers[0].self_attn.q_proj.weight
    assert weight.dtype == torch.float32 and torch.equal(weight, served.float())
    fp32, _ = load_model(base_model_dir, "float32")
    assert prepare_for_training(fp32) is None and fp32.dtype == torch.float32


def test_bf16_autocast_training_matches_fp32_loss_and_is_deterministic(base_model_dir):
    """Tolerance: under bf16 autocast the initial validation loss is within 2% of fp32's, training lowers
    it, the LoRA weights stay fp32, and the same seed gives the identical adapter again."""
    fp32 = train_colours(base_model_dir)[0]
    first, model, _, _ = train_colours(base_model_dir, "bfloat16")
    lora = lora_weights(model)
    again, model, _, _ = train_colours(base_model_dir, "bfloat16")
    lora_again = lora_weights(model)
    assert first["autocast"] == "bfloat16" and fp32["autocast"] is None
    assert abs(first["initial_valid_loss"] - fp32["initial_valid_loss"]) < 0.02 * fp32["initial_valid_loss"]
    assert first["best_valid_loss"] < first["initial_valid_loss"]
    assert all(p.dtype == torch.float32 for p in lora.values())
    assert first["history"] == again["history"]
    assert all(torch.equal(lora[n], lora_again[n]) for n in lora)


def test_the_default_recipe_trains_on_whole_prompts(base_model_dir, default_data):
    """No AG or QA prompt of the default corpus is cut at its stage's max_length: a cut removes the
    chat template's start and the instruction, which the questionnaire and generation then show
    the model in full (a 128-token stage 2 cut every QA prompt by about 40 tokens)."""
    from transformers import AutoTokenizer

    from valueharm.alignment.examples import vim_examples
    from valueharm.alignment.training import encode_pair
    from valueharm.core.schema import to_dict, validate_params
    from valueharm.core.values import VALUES
    from valueharm.models.base import end_of_turn, format_prompt
    from valueharm.profiles.study import ModelSpec

    train = to_dict(validate_params({}))["train"]
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    target = {v: (6.0 if v == "hedonism" else 1.0) for v in VALUES}
    built = vim_examples(
        ModelSpec("hedonism", "adapter", "hedonism", target), default_data / "corpora/value_arguments.tsv", train, 42
    )
    stop = end_of_turn(tokenizer)
    for stage, settings in (("ag", train["stage1"]), ("qa", train["stage2"])):
        examples = [e for part in built[stage] for e in part]
        cuts = [
            encode_pair(tokenizer, format_prompt(tokenizer, e.prompt), e.target + stop, settings["max_length"])
            for e in examples
        ]
        assert all(c is not None for c in cuts), stage
        assert sum(c[2] > 0 for c in cuts) == 0, f"{stage}: prompts cut at max_length {settings['max_length']}"


def test_adapted_layers_counts_from_the_lowest_adapted_layer(base_model_dir):
    from valueharm.alignment.training import adapted_layers

    model, _ = load_model(base_model_dir, "float32")
    assert adapted_layers(add_lora(model, LoraSettings(top_layers=3))) == 3
    model, _ = load_model(base_model_dir, "float32")
    assert adapted_layers(add_lora(model, LoraSettings())) == model.config.num_hidden_layers


def test_right_padded_batches_drop_the_mask_without_changing_the_loss(base_model):
    """`batch_loss` runs right-padded rows without an attention mask (causal attention never reaches the
    padding after a real token): the same summed loss as with the mask, the same real-token count."""
    from valueharm.alignment.training import batch_loss, make_batches, right_padded, target_loss

    model, tokenizer = base_model
    encoded = [encode_pair(tokenizer, p, t, 96)[:2] for p, t in _varied_pairs(tokenizer)]
    ((ids, labels, mask, positions),) = list(make_batches(encoded, range(6), 6, tokenizer.pad_token_id))
    assert right_padded(mask) and not bool(mask.all())  # rows of different lengths
    assert not right_padded(torch.tensor([[0, 1, 1], [1, 1, 1]]))  # left padding keeps its mask
    with_mask = float(target_loss(model, ids, labels, mask, reduction="sum"))
    loss, real = batch_loss(model, (ids, labels, mask, positions), tokenizer.pad_token_id, reduction="sum")
    assert abs(float(loss) - with_mask) < 1e-3 * abs(with_mask) and real == int(mask.sum())
