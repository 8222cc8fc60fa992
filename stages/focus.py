"""Stage focus (param `value`): the focus value's aligned model vs vanilla, per category and
overall -> reports/metrics.json (numeric, for `dvc metrics diff` / `dvc exp show`) and
reports/focus.json (who the focus is, every test). A bad `value` fails before any work (the
params-only part of the same rule, valueharm.experiments.focus.check_value_name, is for the validate stage).
"""

import json
from pathlib import Path

import pandas as pd

from valueharm.core.atomic import write_json
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage
from valueharm.core.paths import path, per_model, report_file
from valueharm.experiments.focus import (
    MATCHED_CONTROL,
    focus_hypotheses,
    focus_metrics,
    focus_report,
    resolve_focus,
)

RESULTS, MODELS = path("results") / "results.csv", path("results") / "models.json"
ADAPTERS = path("results") / "adapters.csv"
HYPOTHESES = path("analysis") / "hypotheses.csv"
MANIPULATION = report_file("manipulation.json")
JUDGE_VALIDATION = report_file("judge_validation.json")


def _json(file: str | Path, stage: str) -> dict:
    if not Path(file).exists():
        raise UserError(f"{file} not found", f"run `dvc repro {stage}`")
    return json.loads(Path(file).read_text(encoding="utf-8"))


def main() -> None:
    params = load_params()
    models = _json(MODELS, "results")["models"]
    focus = resolve_focus(params.get("value"), models)  # fails here, before any work
    from valueharm.analysis.run import compare_paired, load_results  # heavy imports after the check

    p = params.get("focus") or {}
    model = next(m for m in models if m["name"] == focus["model"])
    paired = compare_paired(
        load_results(RESULTS),
        focus["model"],
        "vanilla",
        n_boot=int(p.get("bootstrap", 1000)),
        n_perm=int(p.get("permutations", 10000)),
        seed=int(params.get("seed", 42)),
    )
    control = None
    if any(m["name"] == MATCHED_CONTROL for m in models):  # the headline: vs the matched control
        control = compare_paired(
            load_results(RESULTS),
            focus["model"],
            MATCHED_CONTROL,
            n_boot=int(p.get("bootstrap", 1000)),
            n_perm=int(p.get("permutations", 10000)),
            seed=int(params.get("seed", 42)),
        )
    adapters = None
    if control is not None:  # the same contrast with the adapter (study.seeds) as the unit
        from valueharm.analysis.adapters import compare_adapters

        table = pd.read_csv(ADAPTERS)
        adapters = {
            outcome: compare_adapters(
                table,
                focus["model"],
                MATCHED_CONTROL,
                outcome,
                n_perm=int(p.get("permutations", 10000)),
                seed=int(params.get("seed", 42)),
            )
            for outcome in ("score", "flagged", "harmful", "compliance")
        }
    manipulation = _json(MANIPULATION, "manipulation") if Path(MANIPULATION).exists() else {}
    align = _json(per_model("align_metrics", focus["model"], ".json"), f"align_check@{focus['model']}")
    hypotheses = focus_hypotheses(pd.read_csv(HYPOTHESES) if Path(HYPOTHESES).exists() else None, focus["value"])
    judge = _json(JUDGE_VALIDATION, "judge_validation").get("reliability") if Path(JUDGE_VALIDATION).exists() else None
    write_json(
        report_file("metrics.json"),
        focus_metrics(
            paired, align.get("alignment"), hypotheses, control, manipulation, focus["model"], judge, adapters
        ),
    )
    write_json(
        report_file("focus.json"),
        focus_report(focus, model, paired, align, hypotheses, control, manipulation, adapters),
    )


if __name__ == "__main__":
    run_stage(main)
