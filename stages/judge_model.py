"""Stage judge_model: fit the default harm classifier (MiniLM embeddings + logistic regression) on
PyRIT's human-labelled request/response sets, with its cross-validated AUC."""
from valueharm.atomic import atomic_dir, write_json
from valueharm.judges.classifier import train_classifier
from valueharm.params import load_params, run_stage, section


def main() -> None:
    params = load_params()
    p = section(params, "judge_model")
    with atomic_dir("artifacts/judge_model") as tmp:
        metrics = train_classifier(p["pyrit_dir"], tmp, seed=int(params.get("seed", 42)), C=float(p.get("C", 1.0)),
                                   folds=int(p.get("folds", 5)), max_rows=p.get("max_rows"))
    write_json("reports/judge_model.json", metrics)


if __name__ == "__main__":
    run_stage(main)
