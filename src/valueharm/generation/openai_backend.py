"""Generation through any OpenAI-compatible HTTP server (vLLM, SGLang, TGI, `transformers serve`, OpenAI).

`generate_openai` sends one request per prompt, `concurrency` at a time, and returns
`(answer, tokens generated)` in input order. Two request shapes:

- `mode="chat"`: POST `{base_url}/chat/completions` with the prompt's messages
  (`[{"role": "system", ...}, {"role": "user", ...}]`; a bare string is sent as one user message);
  the server applies the model's chat template.
- `mode="completions"`: POST `{base_url}/completions` with the already formatted prompt text.

`base_url` follows the OpenAI client's convention and includes the API prefix, e.g.
`http://127.0.0.1:8000/v1` or `https://api.openai.com/v1`. Every request carries temperature,
top_p, max_tokens and seed from the run's `Sampling`; the same seed is sent with every prompt,
so an answer depends only on its prompt and the seed, not on which other prompts share the run.
Tokens generated come from `usage.completion_tokens` (None when the server does not report it).

The API key is read only from the environment variable named by `api_key_env` (None means no
authentication, for local servers). It is sent as a bearer token and never logged, stored or
included in an error message.

Connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff
(`backoff * 2**attempt` seconds, at most `retries` times per prompt). Any other HTTP error, a
response that does not parse, or a prompt that is still failing after its last retry stops the
whole run with one `UserError` line: nothing is returned unless every prompt got an answer.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Literal

import requests

from valueharm.core.errors import UserError
from valueharm.generation.hf import Sampling

log = logging.getLogger(__name__)

Prompt = str | Sequence[dict]
RETRY_STATUS = frozenset({429}) | frozenset(range(500, 600))
MAX_BACKOFF_S = 60.0
ERROR_BODY_CHARS = 200


class _Abort(Exception):
    """Another prompt already failed; this worker stops without sending more requests."""


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
    _check_settings(
        model=model,
        base_url=base_url,
        mode=mode,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
    )
    key = _api_key(api_key_env)
    payloads = [_payload(p, i, model=model, sampling=sampling, seed=seed, mode=mode) for i, p in enumerate(prompts)]
    if not payloads:
        return []
    url = base_url.rstrip("/") + ("/chat/completions" if mode == "chat" else "/completions")
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    client = _Client(
        url=url,
        headers=headers,
        key=key,
        mode=mode,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        api_key_env=api_key_env,
    )
    workers = min(concurrency, len(payloads))
    results: list[tuple[str, int | None] | None] = [None] * len(payloads)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-gen")
    ok = False
    try:
        futures = {pool.submit(client.answer, payload): i for i, payload in enumerate(payloads)}
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in done if f.exception() is not None]
        if errors:
            client.stop.set()
            raise next((e for e in errors if not isinstance(e, _Abort)), errors[0])
        for future, i in futures.items():
            results[i] = future.result()
        ok = True
    finally:
        # On failure, queued prompts are cancelled and in-flight ones end by their own timeout;
        # no answer of a failed run is returned.
        client.stop.set()
        pool.shutdown(wait=ok, cancel_futures=True)
    return [r for r in results if r is not None]


def _check_settings(
    *, model: str, base_url: str, mode: str, concurrency: int, timeout: float, retries: int, backoff: float
) -> None:
    if mode not in ("chat", "completions"):
        raise UserError(f"unknown openai mode {mode!r}", "use 'chat' or 'completions'")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise UserError(
            f"openai base_url {base_url!r} is not an http(s) URL",
            "set it to the server's API root, e.g. http://127.0.0.1:8000/v1",
        )
    if not model or not isinstance(model, str):
        raise UserError(
            "openai model name is empty", f"set the model name the server serves (see GET {base_url}/models)"
        )
    if not isinstance(concurrency, int) or concurrency < 1:
        raise UserError(f"openai concurrency must be a positive integer, got {concurrency!r}")
    if not isinstance(retries, int) or retries < 0:
        raise UserError(f"openai retries must be an integer >= 0, got {retries!r}")
    if not timeout or timeout <= 0:
        raise UserError(f"openai timeout must be > 0 seconds, got {timeout!r}")
    if backoff < 0:
        raise UserError(f"openai backoff must be >= 0 seconds, got {backoff!r}")


def _api_key(api_key_env: str | None) -> str | None:
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise UserError(
            f"the API key environment variable {api_key_env} is not set",
            f"export {api_key_env}=<your key>, or set api_key_env to null for a local server without authentication",
        )
    return key


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


class _Client:
    """Sends one prompt with retries; one requests.Session per worker thread."""

    def __init__(
        self,
        *,
        url: str,
        headers: dict[str, str],
        key: str | None,
        mode: str,
        timeout: float,
        retries: int,
        backoff: float,
        api_key_env: str | None,
    ) -> None:
        self.url, self.headers, self.key, self.mode = url, headers, key, mode
        self.timeout, self.retries, self.backoff, self.api_key_env = timeout, retries, backoff, api_key_env
        self.stop = threading.Event()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def answer(self, payload: dict[str, Any]) -> tuple[str, int | None]:
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if self.stop.is_set():
                raise _Abort()
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
                log.warning(
                    "openai backend: %s from %s, retry %d/%d in %.2gs", last, self.url, attempt, self.retries, delay
                )
                if self.stop.wait(delay):
                    raise _Abort()
            try:
                response = self._session().post(self.url, json=payload, headers=self.headers, timeout=self.timeout)
            except requests.Timeout:
                last = f"no answer within {self.timeout:g}s"
                continue
            except requests.ConnectionError:
                last = "connection failed"
                continue
            except requests.RequestException as exc:  # invalid URL and the like: not worth retrying
                raise UserError(
                    f"cannot send a request to {self.url} ({type(exc).__name__})", "check the openai base_url"
                ) from None
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise self._http_error(response)
            return self._parse(response)
        raise UserError(
            f"the OpenAI-compatible server at {self.url} did not answer after {attempts} attempt(s) (last: {last})",
            "start the server (or check the network), check base_url, or raise timeout/retries",
        )

    def _http_error(self, response: requests.Response) -> UserError:
        detail = self._redact(" ".join(response.text.split()))[:ERROR_BODY_CHARS]
        if response.status_code in (401, 403):
            fix = (
                f"check the key in the environment variable {self.api_key_env}"
                if self.api_key_env
                else "the server wants an API key: set api_key_env to the name of the variable that holds it"
            )
        elif response.status_code == 404:
            fix = "check base_url (it should end with the API prefix, e.g. /v1) and the model name"
        else:
            fix = "check the model name and sampling settings the server accepts"
        return UserError(
            f"{self.url} refused the request with HTTP {response.status_code}: {detail or '(empty body)'}", fix
        )

    def _parse(self, response: requests.Response) -> tuple[str, int | None]:
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] if self.mode == "chat" else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            snippet = self._redact(" ".join(response.text.split()))[:ERROR_BODY_CHARS]
            raise UserError(
                f"{self.url} sent a response that is not an OpenAI {self.mode} completion: {snippet!r}",
                "check that base_url points at an OpenAI-compatible API and mode matches the model",
            ) from None
        usage = data.get("usage") if isinstance(data, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
        return ("" if text is None else str(text)).strip(), tokens

    def _redact(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text
