"""Stage align_check@<model>: put the portrait questionnaire to a model, scored by likelihood
(lm-eval style: forced, marginal and bare-number views, raw and length-normalised; no decoding)
and, as a secondary view, by generation and parsing with its parse rate. Compares each answered
profile with the target (NMSE on (s-1)/5-scaled scores, as in the study, and Spearman), with
"not measured" below 8 of 10 values. Usage: python -m stages.align_check MODEL
"""

import sys
import time

from valueharm.core.atomic import write_json, write_jsonl
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.core.paths import align_file, model_dir, path, per_model, perf_file
from valueharm.evaluation import questionnaire as Q
from valueharm.evaluation.likelihood import VARIANTS, VIEWS, score_items
from valueharm.generation.base import Sampling, backend_for
from valueharm.models.base import format_prompt
from valueharm.profiles.study import load_study_model, replicate_adapters, use_replicate


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "align_check")
    seed = int(params.get("seed", 42))
    questionnaire = Q.check_questionnaire_params(p["questionnaire"], p.get("items_per_value"))
    seed_everything(seed)
    model, tokenizer, system, spec = load_study_model(
        model_dir(name), path("vanilla"), section(params, "model").get("dtype", "auto")
    )
    items = Q.build_prompts(questionnaire)
    texts = [format_prompt(tokenizer, item.prompt, system=system) for item in items]
    started = time.perf_counter()
    views = score_items(model, tokenizer, texts, [item.value for item in items])
    scoring_seconds = time.perf_counter() - started
    by_id = {item.id: v for item, v in zip(items, views)}
    replicate_views = _score_replicates(name, model, tokenizer, texts, items)
    target = spec.get("target")
    likelihood: dict = {}
    for view in VIEWS:
        for variant in VARIANTS:
            profile = Q.profile_from_views(questionnaire, by_id, view, variant)
            block = {"profile": profile}
            if target:
                block["alignment"] = Q.alignment_metrics(profile, target)
            likelihood.setdefault(view, {})[variant] = block
    generation: dict = {"enabled": bool(p.get("generate", True))}
    answers = [("", 0)] * len(items)
    gen_seconds = 0.0
    if generation["enabled"]:
        started = time.perf_counter()
        # The secondary view through generate.backend (hf in-process, or a server); scoring above
        # needs the weights in-process whatever the backend.
        runner = backend_for(params, name, model=model, tokenizer=tokenizer, batch_size=p["batch_size"])
        answers = runner.generate(texts, Sampling(**p["sampling"]), seed)
        gen_seconds = time.perf_counter() - started
        scored = Q.score_answers(questionnaire, {item.id: a for item, (a, _) in zip(items, answers)})
        generation.update(scored.as_dict())
        generation["parse_rate"] = scored.n_parsed / max(scored.n_items, 1)
        if target:
            generation["alignment"] = Q.alignment_metrics(scored.profile, target)
    primary = likelihood["forced"]["raw"]
    result = {
        "model": name,
        "kind": spec["kind"],
        "target": target,
        "questionnaire": {
            "name": questionnaire.name,
            "n_items": len(items),
            "study": Q.is_study_questionnaire(questionnaire),
        },
        "method": "likelihood forced/raw (primary); marginal, bare, norm and generation beside it",
        "profile": primary["profile"],
        "likelihood": likelihood,
        "generation": generation,
    }
    if target:
        result["alignment"] = primary["alignment"]
        result["baselines"] = Q.baselines(target)
    write_jsonl(
        align_file(name),
        [
            {
                "item": item.id,
                "value": item.value,
                "reverse": next(i.reverse for i in questionnaire.items if i.id == item.id),
                "text_sent": text,
                "views": v,
                **({"replicate_views": {s: rv[n] for s, rv in replicate_views.items()}} if replicate_views else {}),
                "answer": a if generation["enabled"] else None,
                "parsed": Q.parse_answer(a) if generation["enabled"] else None,
            }
            for n, (item, text, v, (a, _)) in enumerate(zip(items, texts, views, answers))
        ],
    )
    write_json(per_model("align_metrics", name, ".json"), result)
    write_json(
        perf_file("align", name),
        {"scoring_seconds": scoring_seconds, "generation_seconds": gen_seconds, "items": len(items)},
    )


def _score_replicates(name, model, tokenizer, texts, items) -> dict:
    """Likelihood views of every replicate adapter (study.seeds beyond the first), by seed."""
    out = {}
    for seed, folder in replicate_adapters(model_dir(name)):
        use_replicate(model, seed, folder)
        out[str(seed)] = score_items(model, tokenizer, texts, [i.value for i in items])
    if out:
        model.set_adapter("default")
    return out


if __name__ == "__main__":
    run_stage(main)
