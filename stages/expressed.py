"""Stage expressed: the values each model's answers express (value classifier on MiniLM
embeddings, trained on the argument corpus) against its target profile (claim 2)."""

import json

from valueharm.core.atomic import read_jsonl, write_json
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import generations_file, model_dir, report_file
from valueharm.data.arguments import load_arguments
from valueharm.evaluation.expressed import agreement, expressed_profiles, fit_value_classifier


def main() -> None:
    params = load_params()
    models = section(params, "study")["models"]
    classifier = fit_value_classifier(
        load_arguments(section(params, "train")["corpus"]), seed=int(params.get("seed", 42))
    )
    answers = {m: [r["response"] for r in read_jsonl(generations_file(m))] for m in models}
    targets = {m: json.loads((model_dir(m) / "spec.json").read_text()).get("target") for m in models}
    expressed = expressed_profiles(classifier, answers)
    write_json(
        report_file("expressed.json"),
        {
            "classifier_cv_auc": classifier["cv_auc"],
            "n_arguments": classifier["n"],
            "expressed": expressed,
            "targets": targets,
            **agreement(expressed, targets),
        },
    )


if __name__ == "__main__":
    run_stage(main)
