"""Stage generate@<model>: the model answers every benchmark prompt, with full provenance; its
replicate adapters (study.seeds beyond the first) answer the same prompts into a second file.
Usage: python -m stages.generate MODEL
"""

import sys
import time

from valueharm.core.atomic import read_jsonl, write_json, write_jsonl
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import generations_file, model_dir, path, perf_file, replicate_generations_file
from valueharm.generation.base import Sampling, backend_for, sampling_dict
from valueharm.models.base import format_prompt, prompt_kind
from valueharm.profiles.study import load_study_model, load_study_tokenizer, replicate_adapters, use_replicate


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
    replicates = replicate_adapters(model_dir(name), backend)
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
    # Benchmarks that share sampling settings are generated together (fewer, fuller batches).
    groups: dict[Sampling, list[int]] = {}
    for i, r in enumerate(prompts):
        groups.setdefault(samplings[r["benchmark"]], []).append(i)

    def answer_all() -> list:
        answers: list = [None] * len(prompts)
        for sampling, idx in groups.items():
            for i, answer in zip(idx, runner.generate([texts[i] for i in idx], sampling, seed)):
                answers[i] = answer
        return answers

    def rows_of(answers: list, adapter_sha: str | None, adapter_seed: int | None) -> list[dict]:
        return [
            {
                "model": name,
                "adapter_sha": adapter_sha,
                "adapter_seed": adapter_seed,
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

    seeds = spec.get("seeds") or [None]
    started = time.perf_counter()
    rows = rows_of(answer_all(), spec.get("adapter_sha256"), seeds[0])
    # Replicate adapters (study.seeds beyond the first) answer the same prompts with the same
    # sampling seed, so that they differ by their training seed alone: the adapter is the unit.
    replicate_rows: list[dict] = []
    for adapter_seed, folder in replicates:
        use_replicate(model, adapter_seed, folder)
        replicate_rows += rows_of(answer_all(), (spec.get("replicates") or {}).get(str(adapter_seed)), adapter_seed)
    elapsed = time.perf_counter() - started
    n_tokens = sum(r["n_tokens"] or 0 for r in rows + replicate_rows)
    write_jsonl(generations_file(name), rows)
    write_jsonl(replicate_generations_file(name), replicate_rows)
    write_json(
        perf_file("generate", name),
        {
            "tokens_per_second": n_tokens / elapsed if elapsed else 0.0,
            "tokens": n_tokens,
            "seconds": elapsed,
            "adapters": 1 + len(replicates),
        },
    )


if __name__ == "__main__":
    run_stage(main)
