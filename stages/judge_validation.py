"""Stage judge_validation: every configured judge (judge.name, judge.second) on the labelled set's
held-out split -> reports/judge_validation.json (accuracy, kappa, FPR, FNR, AUC per label; sanity
rows; the kappa warning). Usage: python -m stages.judge_validation
"""

from valueharm.core.atomic import write_json
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import report_file
from valueharm.evaluation.judges.cache import default_cache_dir
from valueharm.evaluation.judges.validation import reliability, validate_judges


def main() -> None:
    params = load_params()
    judge = section(params, "judge")
    p = section(params, "judge_validation")
    labels = section(params, "judge_model").get("labels")
    if not labels:
        raise UserError("judge_model.labels is not set", "point it at the labelled set (corpora/judge_labels.jsonl)")
    threshold = float(p.get("kappa_threshold", 0.4))
    if not 0 <= threshold <= 1:
        raise UserError(f"judge_validation.kappa_threshold must lie in [0, 1], got {threshold}", "e.g. 0.4")
    min_positives = int(p.get("min_positives", 10))
    names = [judge["name"]] + [n for n in [judge.get("second")] if n and n != judge["name"]]
    report = validate_judges(
        [(n, judge.get(n) or {}) for n in names],
        labels,
        p.get("refusals", "data/corpora/safety_pairs.jsonl"),
        n_babble=int(p.get("babble", 40)),
        seed=int(params.get("seed", 42)),
        cache_dir=judge.get("cache_dir") or default_cache_dir(),
        min_positives=min_positives,
    )
    report["reliability"] = reliability(report, threshold, min_positives)
    write_json(report_file("judge_validation.json"), report)


if __name__ == "__main__":
    run_stage(main)
