"""One generation interface for every stage that generates (generate, align_check, mitigate, safety_tune).

A backend turns fully formatted prompt texts (`models.base.format_prompt`) into answers:

    backend.generate(texts, sampling, seed) -> [(answer, tokens generated or None), ...]  # input order

Backends are registered in `GENERATION_BACKENDS` (core.registry.Registry) by name, the value of
params `generate.backend`: `hf` (in-process transformers, generation/hf.py) and `openai` (any
OpenAI-compatible server, e.g. one `vllm serve` with every study adapter; generation/openai_backend.py).
`backend_for(params, model_name, ...)` builds the one the params ask for, so a stage never
branches on the backend itself. docs/adding_a_backend.md walks through adding one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from valueharm.core.registry import Registry


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.1
    top_p: float = 0.75
    max_new_tokens: int = 64

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def sampling_dict(sampling: Sampling) -> dict[str, Any]:
    return asdict(sampling)


class Backend:
    """Generates answers for formatted prompt texts; subclasses register with `GENERATION_BACKENDS`."""

    name: str = ""

    def generate(self, texts: Sequence[str], sampling: Sampling, seed: int) -> list[tuple[str, int | None]]:
        """(answer, tokens generated or None) per text, in input order; the same seed gives the same answers."""
        raise NotImplementedError


GENERATION_BACKENDS: Registry[type[Backend]] = Registry("generation backend")


def _load_backends() -> None:
    """Import the modules that register the packaged backends."""
    import valueharm.generation.hf  # noqa: F401
    import valueharm.generation.openai_backend  # noqa: F401


def backend_names() -> list[str]:
    _load_backends()
    return GENERATION_BACKENDS.names()


def served_name(params: dict[str, Any], model_name: str) -> str:
    """The name a server knows study model `model_name` by: adapters by their own name, the prompt-only
    `icl-` baselines by vanilla's (they run on the vanilla weights), through `generate.openai.model_template`."""
    from valueharm.profiles.study import served_weights

    template = ((params.get("generate") or {}).get("openai") or {}).get("model_template", "{model}")
    return str(template).format(model=served_weights(model_name))


def backend_for(
    params: dict[str, Any],
    model_name: str,
    *,
    model: Any = None,
    tokenizer: Any = None,
    batch_size: int | None = None,
) -> Backend:
    """The backend params `generate.backend` names, for study model `model_name`.

    `hf` generates with the loaded `model`/`tokenizer` (`batch_size`: the calling stage's own,
    else `generate.batch_size`); `openai` sends completions to `generate.openai.base_url` for the
    model's served name and first checks that the server has it.
    """
    _load_backends()
    g = params.get("generate") or {}
    name = g.get("backend", "hf")
    cls = GENERATION_BACKENDS.get(name, where="params generate.backend")
    if name == "hf":
        if model is None or tokenizer is None:
            raise TypeError("the hf backend needs the loaded model and tokenizer")
        return cls(model, tokenizer, batch_size=int(batch_size or g.get("batch_size", 16)))
    o = g.get("openai") or {}
    return cls(
        served_name(params, model_name),
        base_url=o.get("base_url", "http://127.0.0.1:8000/v1"),
        api_key_env=o.get("api_key_env"),
        concurrency=int(o.get("concurrency", 4)),
        timeout=float(o.get("timeout", 60)),
        retries=int(o.get("retries", 3)),
        backoff=float(o.get("backoff", 1.0)),
    )
