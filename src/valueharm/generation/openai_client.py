"""The one caller of OpenAI-compatible servers (vLLM, SGLang, TGI, `transformers serve`, OpenAI).

Built on the official `openai` client (`AsyncOpenAI`): its timeouts, its retries (connection
errors, timeouts, HTTP 408/409/429/5xx, honouring `Retry-After`) and async requests, `concurrency`
at a time. The generation backend (`generation/openai_backend.py`) and any judge that talks to an
LLM use `OpenAIClient`, so every caller has the same retry rules and error lines.

- `base_url` includes the API prefix (`http://127.0.0.1:8000/v1`, `https://api.openai.com/v1`).
- The API key is read only from the environment variable named by `api_key_env` (None: no key,
  for local servers); it is never logged, stored, or shown in an error message.
- Retries wait `backoff * 2**n` seconds (at most 60; a server's `Retry-After` wins), at most
  `retries` times per request.
- All or nothing: the first request that fails for good cancels the rest and raises one
  `UserError` line; no partial result is returned.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from typing import Any, Literal

from valueharm.core.errors import UserError

Mode = Literal["chat", "completions"]
MAX_BACKOFF_S = 60.0
ERROR_BODY_CHARS = 200
RETRY_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def check_settings(*, base_url: Any, concurrency: Any, timeout: Any, retries: Any, backoff: Any) -> None:
    """One line per bad setting, before any request."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise UserError(
            f"openai base_url {base_url!r} is not an http(s) URL",
            "set it to the server's API root, e.g. http://127.0.0.1:8000/v1",
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise UserError(f"openai concurrency must be a positive integer, got {concurrency!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UserError(f"openai retries must be an integer >= 0, got {retries!r}")
    if not timeout or timeout <= 0:
        raise UserError(f"openai timeout must be > 0 seconds, got {timeout!r}")
    if backoff is None or backoff < 0:
        raise UserError(f"openai backoff must be >= 0 seconds, got {backoff!r}")


def api_key(api_key_env: str | None) -> str | None:
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise UserError(
            f"the API key environment variable {api_key_env} is not set",
            f"export {api_key_env}=<your key>, or set api_key_env to null for a local server without authentication",
        )
    return key


def _client_class():
    """AsyncOpenAI with our backoff rule (the client's own is fixed at 0.5 s doubling to 8 s)."""
    from openai import AsyncOpenAI

    class _Client(AsyncOpenAI):
        backoff_s: float = 1.0

        def _calculate_retry_timeout(self, remaining_retries, options, response_headers=None) -> float:
            retry_after = self._parse_retry_after_header(response_headers)
            if retry_after is not None and math.isfinite(retry_after) and 0 < retry_after <= MAX_BACKOFF_S:
                return retry_after
            attempt = options.get_max_retries(self.max_retries) - remaining_retries
            return min(self.backoff_s * 2 ** min(attempt, 30), MAX_BACKOFF_S)

    return _Client


class OpenAIClient:
    """Requests to one OpenAI-compatible server, with shared settings and error lines."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        check_settings(base_url=base_url, concurrency=concurrency, timeout=timeout, retries=retries, backoff=backoff)
        self.base_url = base_url.rstrip("/")
        self.api_key_env, self.timeout, self.retries = api_key_env, float(timeout), int(retries)
        self.backoff, self.concurrency = float(backoff), int(concurrency)
        self._key = api_key(api_key_env)

    # ---- public -------------------------------------------------------------------------------

    def complete(self, bodies: Sequence[dict[str, Any]], mode: Mode) -> list[tuple[str, int | None]]:
        """(answer text, completion tokens or None) per request body, in input order; all or nothing.

        A body holds the create() arguments: `model`, `messages` (chat) or `prompt` (completions),
        and sampling (`temperature`, `top_p`, `max_tokens`, `seed`).
        """
        if mode not in ("chat", "completions"):
            raise UserError(f"unknown openai mode {mode!r}", "use 'chat' or 'completions'")
        if not bodies:
            return []
        return asyncio.run(self._complete_all(list(bodies), mode))

    def models(self) -> list[str]:
        """The model names the server serves (GET /models): for vLLM, the base model and every LoRA adapter."""

        async def run() -> list[str]:
            client = self._client()
            try:
                page = await client.models.list(extra_headers=self._headers())
                return sorted(m.id for m in page.data)
            except Exception as exc:
                raise self._error(exc, "/models", attempts=self.retries + 1) from None
            finally:
                await client.close()

        return asyncio.run(run())

    # ---- internals ----------------------------------------------------------------------------

    def _headers(self) -> dict[str, Any]:
        """Per-request headers: without a key the Authorization header is left out (local servers)."""
        import openai

        return {} if self._key else {"Authorization": openai.Omit()}

    def _client(self):
        cls = _client_class()
        client = cls(
            base_url=self.base_url,
            api_key=self._key or "unused",  # never read from OPENAI_API_KEY: only api_key_env counts
            timeout=self.timeout,
            max_retries=self.retries,
        )
        client.backoff_s = self.backoff
        return client

    async def _complete_all(self, bodies: list[dict[str, Any]], mode: Mode) -> list[tuple[str, int | None]]:
        client = self._client()
        gate = asyncio.Semaphore(min(self.concurrency, len(bodies)))
        path = "/chat/completions" if mode == "chat" else "/completions"
        headers = self._headers()

        async def one(body: dict[str, Any]) -> tuple[str, int | None]:
            async with gate:
                try:
                    if mode == "chat":
                        response = await client.chat.completions.create(**body, extra_headers=headers)
                    else:
                        response = await client.completions.create(**body, extra_headers=headers)
                except Exception as exc:
                    raise self._error(exc, path, attempts=self.retries + 1) from None
            return self._parse(response, mode, path)

        tasks = [asyncio.ensure_future(one(b)) for b in bodies]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
            if failed:
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise failed[0].exception()
            return [t.result() for t in tasks]
        finally:
            await client.close()

    def _parse(self, response: Any, mode: Mode, path: str) -> tuple[str, int | None]:
        try:
            choice = response.choices[0]
            text = choice.message.content if mode == "chat" else choice.text
        except (AttributeError, IndexError, TypeError):
            snippet = self._redact(" ".join(str(response).split()))[:ERROR_BODY_CHARS]
            raise UserError(
                f"{self.base_url}{path} sent a response that is not an OpenAI {mode} completion: {snippet!r}",
                "check that base_url points at an OpenAI-compatible API and mode matches the model",
            ) from None
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "completion_tokens", None)
        tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
        return ("" if text is None else str(text)).strip(), tokens

    def _error(self, exc: Exception, path: str, attempts: int) -> UserError:
        import openai

        url = f"{self.base_url}{path}"
        if isinstance(exc, UserError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            last = f"no answer within {self.timeout:g}s"
        elif isinstance(exc, openai.APIConnectionError):
            last = "connection failed"
        elif isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUS:
            last = f"HTTP {exc.status_code}"
        elif isinstance(exc, openai.APIStatusError):
            return self._http_error(url, exc)
        else:
            snippet = self._redact(" ".join(str(exc).split()))[:ERROR_BODY_CHARS]
            return UserError(
                f"{url} sent a response that could not be read ({type(exc).__name__}: {snippet})",
                "check that base_url points at an OpenAI-compatible API and mode matches the model",
            )
        return UserError(
            f"the OpenAI-compatible server at {url} did not answer after {attempts} attempt(s) (last: {last})",
            "start the server (or check the network), check base_url, or raise timeout/retries",
        )

    def _http_error(self, url: str, exc: Any) -> UserError:
        try:
            body = exc.response.text
        except Exception:
            body = str(exc)
        detail = self._redact(" ".join(str(body).split()))[:ERROR_BODY_CHARS]
        status = exc.status_code
        if status in (401, 403):
            fix = (
                f"check the key in the environment variable {self.api_key_env}"
                if self.api_key_env
                else "the server wants an API key: set api_key_env to the name of the variable that holds it"
            )
        elif status == 404:
            fix = "check base_url (it should end with the API prefix, e.g. /v1) and the model name"
        else:
            fix = "check the model name and sampling settings the server accepts"
        return UserError(f"{url} refused the request with HTTP {status}: {detail or '(empty body)'}", fix)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text
