"""One generation interface: the registry, `backend_for`, and the openai backend against a fake vLLM.

`FakeVLLM` is a clearly named test double (a stdlib loopback server that answers GET /v1/models
with the model names it was given and POST /v1/completions with an echo), beside the real
`transformers serve` tests in test_openai_backend.py. The hf backend runs the real packaged model.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from valueharm.core.errors import UserError
from valueharm.generation.base import GENERATION_BACKENDS, Backend, Sampling, backend_for, backend_names, served_name
from valueharm.generation.hf import HFBackend, generate_texts
from valueharm.generation.openai_backend import OpenAIBackend

GREEDY = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=4)


class FakeVLLM:
    """Test double for `vllm serve --enable-lora --lora-modules ...`: serves the given model names."""

    def __init__(self, served: list[str]) -> None:
        self.served, self.requests = served, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, payload: dict, status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                outer.requests.append(("GET", self.path, None))
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "vllm"} for m in outer.served]
                self._send({"object": "list", "data": data})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(("POST", self.path, body))
                if body["model"] not in outer.served:
                    self._send({"error": {"message": f"model {body['model']} does not exist"}}, 404)
                    return
                text = f"{body['model']}: {body['prompt'][-5:]}"
                self._send(
                    {
                        "object": "text_completion",
                        "choices": [{"index": 0, "text": text}],
                        "usage": {"completion_tokens": 3},
                    }
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeVLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def params_for(url: str, backend: str = "openai") -> dict:
    return {
        "generate": {
            "backend": backend,
            "batch_size": 2,
            "openai": {"base_url": url, "timeout": 5, "retries": 0, "backoff": 0},
        }
    }


def test_registry_has_both_backends_and_names_the_valid_ones() -> None:
    assert backend_names() == ["hf", "openai"]
    assert GENERATION_BACKENDS["hf"] is HFBackend and GENERATION_BACKENDS["openai"] is OpenAIBackend
    assert issubclass(HFBackend, Backend) and issubclass(OpenAIBackend, Backend)
    with pytest.raises(UserError, match=r"unknown generation backend 'vllm'.*valid: hf, openai"):
        backend_for(params_for("http://x/v1", "vllm"), "power")


def test_served_names_icl_runs_on_vanilla() -> None:
    params = {"generate": {"openai": {"model_template": "{model}"}}}
    assert served_name(params, "power-r03") == "power-r03" and served_name(params, "icl-power-r03") == "vanilla"
    assert served_name({"generate": {"openai": {"model_template": "study/{model}"}}}, "vanilla") == "study/vanilla"


def test_openai_backend_generates_for_a_served_adapter() -> None:
    with FakeVLLM(["vanilla", "power-r03"]) as server:
        backend = backend_for(params_for(server.base_url), "power-r03")
        out = backend.generate(["QUESTION: a\nANSWER: ", "QUESTION: b\nANSWER: "], GREEDY, seed=3)
        assert out == [("power-r03: WER:", 3), ("power-r03: WER:", 3)]
        icl = backend_for(params_for(server.base_url), "icl-power-r03").generate(["x"], GREEDY, seed=3)
        assert icl == [("vanilla: x", 3)]
    gets = [r for r in server.requests if r[0] == "GET"]
    posts = [r[2] for r in server.requests if r[0] == "POST"]
    assert [g[1] for g in gets] == ["/v1/models", "/v1/models"]  # checked once per backend, before generating
    assert {(p["model"], p["max_tokens"], p["seed"], p["temperature"]) for p in posts} == {
        ("power-r03", 4, 3, 0.0),
        ("vanilla", 4, 3, 0.0),
    }


def test_server_lacking_an_adapter_is_one_line_naming_it() -> None:
    with FakeVLLM(["vanilla", "power-r01"]) as server:
        backend = backend_for(params_for(server.base_url), "hedonism-r07")
        with pytest.raises(UserError) as err:
            backend.generate(["x"], GREEDY, seed=0)
    message = str(err.value)
    assert "does not serve hedonism-r07" in message and "valueharm serve" in message and "\n" not in message
    assert all(r[0] == "GET" for r in server.requests)  # nothing was generated


def test_hf_backend_is_generate_texts(base_model) -> None:
    model, tokenizer = base_model
    texts = ["QUESTION: Name a colour.\nANSWER: ", "QUESTION: Count to three.\nANSWER: "]
    backend = backend_for({"generate": {"backend": "hf", "batch_size": 2}}, "vanilla", model=model, tokenizer=tokenizer)
    assert isinstance(backend, HFBackend)
    assert backend.generate(texts, GREEDY, seed=0) == generate_texts(
        model, tokenizer, texts, GREEDY, seed=0, batch_size=2
    )
    with pytest.raises(TypeError):
        backend_for({"generate": {"backend": "hf"}}, "vanilla")
