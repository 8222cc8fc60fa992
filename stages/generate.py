"""Stage generate@<model>: the model answers every benchmark prompt, with full provenance.
Usage: python -m stages.generate MODEL
"""

import sys
import time

from valueharm.core.atomic import read_jsonl, write_json, write_jsonl
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.generation.hf import Sampling, generate_texts, sampling_dict
from valueharm.models.base import format_prompt
from valueharm.profiles.study import load_study_model


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "generate")
    seed = int(params.get("seed", 42))
    seed_everything(seed)
    prompts = read_jsonl("artifacts/benchmarks/prompts.jsonl")
    if not prompts:
        raise UserError("the benchmark prompt table is empty", "check params `benchmarks` (limits, paths)")
    samplings = {
        b: Sampling(**{**p["sampling"]["default"], **p["sampling"].get(b, {})})
        for b in {r["benchmark"] for r in prompts}
    }
    backend = p.get("backend", "hf")
    model, tokenizer, system, spec = load_study_model(
        f"artifacts/models/{name}", "artifacts/vanilla", section(params, "model").get("dtype", "auto")
    )
    texts = [
        format_prompt(tokenizer, r["prompt"], system=system, use_chat_template=p.get("chat_template", True))
        for r in prompts
    ]
    answers: list = [None] * len(prompts)
    started, n_tokens = time.perf_counter(), 0
    # Benchmarks that share sampling settings are generated together (fewer, fuller batches).
    groups: dict[Sampling, list[int]] = {}
    for i, r in enumerate(prompts):
        groups.setdefault(samplings[r["benchmark"]], []).append(i)
    for sampling, idx in groups.items():
        if backend == "hf":
            out = generate_texts(
                model, tokenizer, [texts[i] for i in idx], sampling, seed=seed, batch_size=p["batch_size"]
            )
        elif backend == "openai":
            from valueharm.generation.openai_backend import generate_openai

            o = p["openai"]
            served = o.get("model_template", "{model}").format(model=name)
            out = generate_openai(
                [texts[i] for i in idx],
                model=served,
                sampling=sampling,
                seed=seed,
                base_url=o["base_url"],
                api_key_env=o.get("api_key_env"),
                mode="completions",
                concurrency=int(o.get("concurrency", 4)),
                timeout=float(o.get("timeout", 60)),
                retries=int(o.get("retries", 3)),
                backoff=float(o.get("backoff", 1.0)),
            )
        else:
            from valueharm.core.registry import unknown_name

            raise unknown_name("generation backend", backend, ["hf", "openai"], where="params generate.backend")
        for i, answer in zip(idx, out):
            answers[i] = answer
            n_tokens += answer[1] or 0
    elapsed = time.perf_counter() - started
    rows = [
        {
            "model": name,
            "adapter_sha": spec.get("adapter_sha256"),
            "benchmark": r["benchmark"],
            "prompt_id": r["id"],
            "category": r["category"],
            "prompt": r["prompt"],
            "text_sent": text,
            "response": a,
            "sampling": sampling_dict(samplings[r["benchmark"]]),
            "seed": seed,
            "backend": backend,
            "n_tokens": n,
        }
        for r, text, (a, n) in zip(prompts, texts, answers)
    ]
    write_jsonl(f"artifacts/generations/{name}.jsonl", rows)
    write_json(
        f"reports/perf/generate-{name}.json",
        {"tokens_per_second": n_tokens / elapsed if elapsed else 0.0, "tokens": n_tokens, "seconds": elapsed},
    )


if __name__ == "__main__":
    run_stage(main)
