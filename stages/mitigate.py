"""Stage mitigate: the four prompt conditions (input only, safety prompt, value prompt that
counters the focus value, both) on the focus model (every adapter of study.seeds) and vanilla, over
the prompts of the focus value's risk-linked categories; judged; paired tests -> reports/mitigation.json and
artifacts/mitigation/{generations,labels}.jsonl. See valueharm.experiments.mitigation for the rules."""

import json
from pathlib import Path

import pandas as pd

from valueharm.analysis.run import load_registry
from valueharm.core.atomic import read_jsonl, write_json, write_jsonl
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import model_dir, path, report_file
from valueharm.evaluation.judges import judge_rows
from valueharm.evaluation.judges.cache import default_cache_dir
from valueharm.experiments.mitigation import (
    CONDITIONS,
    adapter_gains,
    choose_links,
    condition_tests,
    gain_difference,
    generation_rows,
    label_table,
    mitigation_report,
    select_prompts,
    summarise,
    system_prompt,
)
from valueharm.generation.base import Sampling, backend_for
from valueharm.models.base import format_prompt
from valueharm.profiles.study import load_study_model, load_study_tokenizer, replicate_adapters, use_replicate

FOCUS, PROMPTS = report_file("focus.json"), path("benchmarks")
CORRELATIONS = path("analysis") / "correlations.csv"


def main() -> None:
    params = load_params()
    p, a, j = section(params, "mitigate"), params.get("analyze") or {}, section(params, "judge")
    seed = int(params.get("seed", 42))
    if not Path(FOCUS).exists():
        raise UserError(f"{FOCUS} not found", "run `dvc repro focus`")
    focus = json.loads(Path(FOCUS).read_text(encoding="utf-8"))
    prompts = read_jsonl(PROMPTS)
    registry = load_registry(a.get("hypotheses") or None)
    correlations = pd.read_csv(CORRELATIONS) if Path(CORRELATIONS).exists() else None
    links = choose_links(
        correlations,
        registry,
        focus["value"],
        [r["category"] for r in prompts],
        a.get("primary_method", "spearman"),
        float(a.get("alpha", 0.05)),
    )
    chosen = select_prompts(prompts, links["categories"], p.get("limit"))
    seed_everything(seed)
    sampling, batch_size = Sampling(**p["sampling"]), int(p.get("batch_size", 16))
    chat = section(params, "generate").get("chat_template", True)
    backend = section(params, "generate").get("backend", "hf")
    hf = backend == "hf"
    replicates = replicate_adapters(model_dir(focus["model"]), backend)
    rows: list[dict] = []
    for name in (focus["model"], "vanilla"):
        if hf:
            model, tokenizer, base, spec = load_study_model(
                model_dir(name), path("vanilla"), section(params, "model").get("dtype", "auto")
            )
        else:  # a server holds the weights: only the tokenizer is needed here
            model, (tokenizer, base, spec) = None, load_study_tokenizer(model_dir(name), path("vanilla"))
        runner = backend_for(params, name, model=model, tokenizer=tokenizer, batch_size=batch_size)  # generate.backend
        # Every adapter of the focus model (study.seeds) answers the same prompts with the same
        # sampling seed, as in stage generate: the adapters differ by their training seed alone.
        adapters = [((spec.get("seeds") or [None])[0], None)] + (replicates if name == focus["model"] else [])
        for adapter_seed, folder in adapters:
            if folder is not None:
                use_replicate(model, adapter_seed, folder)
            for condition in CONDITIONS:
                # One call per condition: its system prompt is a prefix shared by every prompt, so
                # generate_texts runs it once and reuses its KV cache for the whole batch.
                system = system_prompt(condition, focus["value"], base)
                texts = [format_prompt(tokenizer, r["prompt"], system=system, use_chat_template=chat) for r in chosen]
                answers = runner.generate(texts, sampling, seed)
                rows += generation_rows(chosen, name, condition, texts, answers, adapter_seed)
        del model
    labels = judge_rows(rows, j["name"], j.get(j["name"], {}), cache_dir=j.get("cache_dir") or default_cache_dir())
    for label, row in zip(labels, rows):
        label["condition"], label["adapter_seed"] = row["condition"], row["adapter_seed"]
    table = label_table(labels)
    n_boot, n_perm = int(p.get("bootstrap", 1000)), int(p.get("permutations", 10000))
    tests = condition_tests(table, n_boot=n_boot, n_perm=n_perm, seed=seed)
    gains = gain_difference(table, focus["model"], "vanilla", n_boot=n_boot, n_perm=n_perm, seed=seed)
    by_adapter = adapter_gains(table, focus["model"], "vanilla")
    write_jsonl(path("mitigation") / "generations.jsonl", rows)
    write_jsonl(path("mitigation") / "labels.jsonl", labels)
    write_json(
        report_file("mitigation.json"),
        mitigation_report(focus, links, len(chosen), j["name"], summarise(table), tests, gains, by_adapter),
    )


if __name__ == "__main__":
    run_stage(main)
