"""Stage judge_model: fit the default harm classifier (MiniLM embeddings + logistic regression) on
PyRIT's human-labelled request/response sets, with its cross-validated AUC."""

from valueharm.core.atomic import write_json
from valueharm.core.params import load_params, run_stage, section
from valueharm.evaluation.judges.classifier import train_classifier


def main() -> None:
    params = load_params()
    p = section(params, "judge_model")
    metrics = train_classifier(
        p["pyrit_dir"],
        "artifacts/judge_model",
        seed=int(params.get("seed", 42)),
        C=float(p.get("C", 1.0)),
        folds=int(p.get("folds", 5)),
        max_rows=p.get("max_rows"),
        max_seq_length=int(p.get("max_seq_length", 256)),
    )
    write_json("reports/judge_model.json", metrics)


if __name__ == "__main__":
    run_stage(main)
