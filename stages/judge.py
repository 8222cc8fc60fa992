"""Stage judge@<model>: every answer gets refusal, compliance, harmful (and score / p_harm, flagged)
from the configured judge (cached by content hash, keyed by the judge's identity); per-model
metrics with bootstrap CIs; agreement with a second judge on each outcome both give. The
replicate adapters' answers (study.seeds beyond the first) are judged into a second labels file.
Usage: python -m stages.judge MODEL
"""

import sys

from valueharm.core.atomic import read_jsonl, write_json, write_jsonl
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import (
    generations_file,
    labels_file,
    per_model,
    replicate_generations_file,
    replicate_labels_file,
)
from valueharm.evaluation.harm_metrics import judge_agreement, per_model_metrics
from valueharm.evaluation.judges import get_judge, judge_rows
from valueharm.evaluation.judges.cache import default_cache_dir


def main() -> None:
    name = sys.argv[1]
    params = load_params()
    p = section(params, "judge")
    seed = int(params.get("seed", 42))
    rows = read_jsonl(generations_file(name))
    cache = p.get("cache_dir") or default_cache_dir()
    stats: dict = {}
    judge = get_judge(p["name"], **p.get(p["name"], {}))  # built (its model loaded) once for both label files
    labels = judge_rows(rows, p["name"], cache_dir=cache, stats=stats, judge=judge)
    print(f"judge@{name}: {stats}", file=sys.stderr)  # cache hits vary between runs; kept out of the report
    report = {
        "judge": p["name"],
        "judge_identity": labels[0]["judge_identity"] if labels else None,
        "parse_failures": stats.get("parse_failures", 0),
        "metrics": per_model_metrics(labels, n_boot=int(p.get("bootstrap", 1000)), seed=seed),
    }
    second = p.get("second")
    if second:
        other = judge_rows(rows, second, p.get(second, {}), cache_dir=cache)
        report["agreement"] = {"with": second, **judge_agreement(labels, other, "flagged")}
        report["agreement_by_outcome"] = {
            field: judge_agreement(labels, other, field) for field in ("harmful", "compliance", "refusal", "flagged")
        }
    # Replicate adapters' answers (study.seeds beyond the first): judged alike, their rate per seed.
    # (absent outside DVC, e.g. generations made before replicates: then there are none to judge)
    replicate_file = replicate_generations_file(name)
    replicate_rows = read_jsonl(replicate_file) if replicate_file.exists() else []
    replicate_labels = judge_rows(replicate_rows, p["name"], cache_dir=cache, judge=judge) if replicate_rows else []
    if replicate_labels:
        report["replicates"] = {
            str(s): per_model_metrics(
                [r for r in replicate_labels if r.get("adapter_seed") == s],
                n_boot=int(p.get("bootstrap", 1000)),
                seed=seed,
            )
            for s in dict.fromkeys(r.get("adapter_seed") for r in replicate_labels)
        }
    write_jsonl(labels_file(name), labels)
    write_jsonl(replicate_labels_file(name), replicate_labels)
    write_json(per_model("judge_metrics", name, ".json"), report)


if __name__ == "__main__":
    run_stage(main)
