"""Stage align_check@<model>: put the portrait questionnaire to a model and compare its answered
value profile with its target (NMSE on (s-1)/5-scaled scores, as in the study, and Spearman).
Usage: python -m stages.align_check MODEL
"""

import sys

from valueharm.core.atomic import write_json, write_jsonl
from valueharm.core.params import load_params, run_stage, section, seed_everything
from valueharm.evaluation import questionnaire as Q
from valueharm.generation.hf import Sampling, generate_texts
from valueharm.models.base import format_prompt
from valueharm.profiles.study import load_study_model


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "align_check")
    seed = int(params.get("seed", 42))
    seed_everything(seed)
    model, tokenizer, system, spec = load_study_model(
        f"artifacts/models/{name}", "artifacts/vanilla", section(params, "model").get("dtype", "auto")
    )
    questionnaire = Q.load_questionnaire(p["questionnaire"]).shortened(p.get("items_per_value"))
    items = Q.build_prompts(questionnaire)
    texts = [format_prompt(tokenizer, item.prompt, system=system) for item in items]
    answers = generate_texts(model, tokenizer, texts, Sampling(**p["sampling"]), seed=seed, batch_size=p["batch_size"])
    scored = Q.score_answers(questionnaire, {item.id: a for item, (a, _) in zip(items, answers)})
    result = {"model": name, "kind": spec["kind"], "target": spec.get("target"), **scored.as_dict()}
    if spec.get("target"):
        result["alignment"] = Q.alignment_metrics(scored.profile, spec["target"])
    write_jsonl(
        f"artifacts/align/{name}.jsonl",
        [
            {"item": item.id, "value": item.value, "text_sent": text, "answer": a, "parsed": Q.parse_answer(a)}
            for item, text, (a, _) in zip(items, texts, answers)
        ],
    )
    write_json(f"reports/align/{name}.json", result)


if __name__ == "__main__":
    run_stage(main)
