"""Stage generate@<model>: the model answers every benchmark prompt, with full provenance.
Usage: python -m stages.generate MODEL
"""

import sys
import time

from valueharm.core.atomic import read_jsonl, write_json, write_jsonl
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import generations_file, model_dir, path, perf_file
from valueharm.generation.base import Sampling, backend_for, sampling_dict
from valueharm.models.base import format_prompt, prompt_kind
from valueharm.profiles.study import load_study_model, load_study_tokenizer


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "generate")
    seed = int(params.get("seed", 42))
    seed_everything(seed)
    prompts = read_jsonl(path("benchmarks"))
    if not prompts:
        raise UserError("the benchmark prompt table is empty", "check params `benchmarks` (limits, paths)")
    samplings = {
        b: Sampling(**{**p["sampling"]["default"], **p["sampling"].get(b, {})})
        for b in {r["benchmark"] for r in prompts}
    }
    backend = p.get("backend", "hf")
    if backend == "hf":
        model, tokenizer, system, spec = load_study_model(
            model_dir(name), path("vanilla"), section(params, "model").get("dtype", "auto")
        )
    else:  # a server holds the weights: only the tokenizer (for the prompt text) is needed here
        model, (tokenizer, system, spec) = None, load_study_tokenizer(model_dir(name), path("vanilla"))
    runner = backend_for(params, name, model=model, tokenizer=tokenizer, batch_size=p["batch_size"])
    loaders = {b: (cfg or {}).get("loader") for b, cfg in (params.get("benchmarks") or {}).items()}
    texts = [
        format_prompt(
            tokenizer,
            r["prompt"],
            system=system,
            use_chat_template=p.get("chat_template", True),
            kind=prompt_kind(loaders.get(r["benchmark"])),  # QUESTION/ANSWER, or plain completion for RTP
        )
        for r in prompts
    ]
    answers: list = [None] * len(prompts)
    started, n_tokens = time.perf_counter(), 0
    # Benchmarks that share sampling settings are generated together (fewer, fuller batches).
    groups: dict[Sampling, list[int]] = {}
    for i, r in enumerate(prompts):
        groups.setdefault(samplings[r["benchmark"]], []).append(i)
    for sampling, idx in groups.items():
        out = runner.generate([texts[i] for i in idx], sampling, seed)
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
    write_jsonl(generations_file(name), rows)
    write_json(
        perf_file("generate", name),
        {"tokens_per_second": n_tokens / elapsed if elapsed else 0.0, "tokens": n_tokens, "seconds": elapsed},
    )


if __name__ == "__main__":
    run_stage(main)
