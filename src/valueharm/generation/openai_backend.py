"""Generation through any OpenAI-compatible HTTP server (vLLM, SGLang, TGI, `transformers serve`, OpenAI).

`generate_openai` sends one request per prompt through the shared `OpenAIClient`
(generation/openai_client.py: the official `openai` client's retries, timeouts and async
concurrency) and returns `(answer, tokens generated)` in input order. Two request shapes:

- `mode="chat"`: `/chat/completions` with the prompt's messages (`[{"role": "system", ...},
  {"role": "user", ...}]`; a bare string is sent as one user message); the server applies the
  model's chat template.
- `mode="completions"`: `/completions` with the already formatted prompt text (what the
  pipeline sends: the text is built by `models.base.format_prompt`, as for the hf backend).

Every request carries temperature, top_p, max_tokens and seed from the run's `Sampling`; the same
seed is sent with every prompt, so an answer depends only on its prompt and the seed. Tokens
generated come from `usage.completion_tokens` (None when the server does not report it).

`OpenAIBackend` is the registered `openai` generation backend (generation/base.py). Before its
first request it asks the server which models it serves (GET /models) and stops with one line
naming the model (for vLLM: the LoRA adapter) the study needs but the server lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from valueharm.core.errors import UserError
from valueharm.generation.base import GENERATION_BACKENDS, Backend, Sampling
from valueharm.generation.openai_client import OpenAIClient

Prompt = str | Sequence[dict]


def generate_openai(
    prompts: Sequence[Prompt],
    *,
    model: str,
    sampling: Sampling,
    seed: int,
    base_url: str,
    api_key_env: str | None = None,
    mode: Literal["chat", "completions"] = "chat",
    concurrency: int = 4,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 1.0,
) -> list[tuple[str, int | None]]:
    """Answer every prompt through an OpenAI-compatible server; (answer, tokens generated) in input order."""
    if mode not in ("chat", "completions"):
        raise UserError(f"unknown openai mode {mode!r}", "use 'chat' or 'completions'")
    backend = OpenAIBackend(
        model,
        base_url=base_url,
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        check=False,
    )
    return backend.send(prompts, sampling, seed, mode)


def _payload(prompt: Prompt, index: int, *, model: str, sampling: Sampling, seed: int, mode: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "temperature": float(sampling.temperature),
        "top_p": float(sampling.top_p),
        "max_tokens": int(sampling.max_new_tokens),
        "seed": int(seed),
        "stream": False,
    }
    if mode == "chat":
        if isinstance(prompt, str):
            messages = [{"role": "user", "content": prompt}]
        else:
            messages = [dict(m) for m in prompt]
            if not messages or not all(
                isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages
            ):
                raise UserError(
                    f"prompt {index} is not a list of chat messages",
                    "give each prompt as [{'role': ..., 'content': ...}, ...] or as plain text",
                )
        body["messages"] = messages
    else:
        if not isinstance(prompt, str):
            raise UserError(
                f"prompt {index} is a message list but mode is 'completions'",
                "format prompts as text for completions mode, or use mode 'chat'",
            )
        body["prompt"] = prompt
    return body


def check_served(client: OpenAIClient, needed: Sequence[str]) -> None:
    """Fail with one line if the server does not serve a model (adapter) the study needs."""
    served = set(client.models())
    missing = [m for m in needed if m not in served]
    if missing:
        shown = ", ".join(sorted(served)[:8]) + (" ..." if len(served) > 8 else "")
        raise UserError(
            f"the server at {client.base_url} does not serve {', '.join(missing)} (it serves: {shown or 'nothing'})",
            "start it with the study's command (`valueharm serve`), which lists every adapter with --lora-modules",
        )


@GENERATION_BACKENDS.register("openai")
class OpenAIBackend(Backend):
    """Completions of formatted texts from an OpenAI-compatible server, for one served model name."""

    def __init__(
        self,
        served_model: str,
        *,
        base_url: str,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        check: bool = True,
    ) -> None:
        if not served_model or not isinstance(served_model, str):
            raise UserError(
                "openai model name is empty",
                f"set the model name the server serves (GET {base_url}/models; generate.openai.model_template)",
            )
        self.served_model = served_model
        self.client = OpenAIClient(
            base_url,
            api_key_env=api_key_env,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            concurrency=concurrency,
        )
        self._checked = not check

    def send(
        self, prompts: Sequence[Prompt], sampling: Sampling, seed: int, mode: Literal["chat", "completions"]
    ) -> list[tuple[str, int | None]]:
        """One request per prompt in `mode`; (answer, tokens generated) in input order."""
        bodies = [
            _payload(p, i, model=self.served_model, sampling=sampling, seed=seed, mode=mode)
            for i, p in enumerate(prompts)
        ]
        return self.client.complete(bodies, mode)

    def generate(self, texts: Sequence[str], sampling: Sampling, seed: int) -> list[tuple[str, int | None]]:
        if not self._checked:
            check_served(self.client, [self.served_model])
            self._checked = True
        return self.send(texts, sampling, seed, "completions")
