"""The packaged model converts, reloads and generates; bad model names fail in one line."""

from __future__ import annotations

import json

import pytest

from valueharm.core.errors import UserError
from valueharm.generation.hf import Sampling, generate_texts
from valueharm.models import base as models


def test_conversion_writes_safetensors_only(base_model_dir):
    files = {p.name for p in base_model_dir.iterdir()}
    assert "model.safetensors" in files and "config.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl", ".gguf")) for name in files)
    config = json.loads((base_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True


def test_reloaded_model_generates(base_model):
    model, tokenizer = base_model
    text = models.format_prompt(tokenizer, "What is the capital of France?")
    assert "<|im_start|>assistant" in text  # the model's own chat template is used
    ((answer, n),) = generate_texts(model, tokenizer, [text], Sampling(temperature=0, top_p=1, max_new_tokens=12))
    assert n > 0 and "Paris" in answer


def test_prompt_format_without_chat_template(base_model):
    _, tokenizer = base_model
    assert models.format_prompt(tokenizer, "Hi?", use_chat_template=False) == "QUESTION: Hi?\nANSWER: "


def test_unknown_model_offline_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError) as info:
        models.build_base_model("no-such-org/no-such-model-xyz", None, tmp_path, tmp_path / "out")
    message = str(info.value)
    assert "offline" in message and "VALUEHARM_ALLOW_HUB" in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_local_folder_without_safetensors_is_refused(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(UserError, match="safetensors"):
        models.build_base_model(str(folder), None, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_gguf_package_is_explained(tmp_path, monkeypatch):
    real = models.importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(UserError, match="gguf"):
        models.build_base_model("smollm2-135m-instruct", None, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_dtype():
    with pytest.raises(UserError, match="float32"):
        models.pick_dtype("int3", "cpu")
