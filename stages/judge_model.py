"""Stage judge_model: fit the default judge on PyRIT's human labels and the labelled set's train split:
the packaged MiniLM fine-tuned as a cross-encoder on (request, answer) with harmful and compliance heads,
tested on a request-grouped fold it never saw (or, with kind probe, frozen features + logistic heads)."""

from valueharm.core.atomic import write_json
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import path, report_file
from valueharm.evaluation.judges.classifier import train_classifier


def main() -> None:
    params = load_params()
    p = section(params, "judge_model")
    metrics = train_classifier(
        p["pyrit_dir"],
        path("judge_model"),
        seed=int(params.get("seed", 42)),
        C=float(p.get("C", 0.01)),
        folds=int(p.get("folds", 5)),
        max_rows=p.get("max_rows"),
        max_seq_length=int(p.get("max_seq_length", 128)),
        labels_path=p.get("labels"),
        own_weight=float(p.get("own_weight", 3.0)),
        n_babble=int(p.get("babble", 60)),
        max_refusal_rows=p.get("max_refusal_rows", 600),
        benign_path=p.get("benign"),
        n_benign=int(p.get("n_benign", 120)),
        kind=p["kind"],
        epochs=int(p["epochs"]),
        lr=float(p["lr"]),
        batch_size=int(p["batch_size"]),
        dtype=p["dtype"],
        all_folds=bool(p["all_folds"]),
    )
    write_json(report_file("judge_model.json"), metrics)


if __name__ == "__main__":
    run_stage(main)
