"""Stage report: reports/report.md (setup and caveats, safety tuning, alignment, safety per model,
claim-1 groups, categories, correlation heatmap, hypotheses, focus, mitigation, training curves)
and reports/plots/ (PNGs, plus per-model CSVs for `dvc plots`); reports/report.html, the same report
as one self-contained page that drills down from each table cell to its answers and labels
(it also reads artifacts/generations, artifacts/labels and artifacts/align)."""

import json
from pathlib import Path

import pandas as pd

from valueharm.analysis.run import write_csv
from valueharm.core.atomic import atomic_dir, write_text
from valueharm.core.params import load_params, run_stage
from valueharm.report.html import images_from, read_drilldown, render_html
from valueharm.report.markdown import ReportInputs, plot_tables, read_training_curves, render_report, write_figures

ANALYSIS = Path("reports/analysis")


def _json(path: str | Path):
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _csv(name: str):
    path = ANALYSIS / name
    return pd.read_csv(path) if path.exists() else None


def main() -> None:
    params = load_params()
    models = (_json("artifacts/results/models.json") or {}).get("models", [])
    names = [m["name"] for m in models]
    inputs = ReportInputs(
        params=params,
        models=models,
        judge={n: j for n in names if (j := _json(f"reports/judge/{n}.json"))},
        align={n: a for n in names if (a := _json(f"reports/align/{n}.json"))},
        safety_tune=_json("reports/safety_tune.json"),
        judge_model=_json("reports/judge_model.json"),
        judge_validation=_json("reports/judge_validation.json"),
        benchmarks=_json("reports/benchmarks.json"),
        summary=_json(ANALYSIS / "summary.json"),
        correlations=_csv("correlations.csv"),
        hypotheses=_csv("hypotheses.csv"),
        groups=_csv("groups.csv"),
        paired=_csv("paired.csv"),
        model_table=_csv("models.csv"),
        focus=_json("reports/focus.json"),
        mitigation=_json("reports/mitigation.json"),
        expressed=_json("reports/expressed.json"),
        training=read_training_curves("dvclive/train", names),
    )
    with atomic_dir("reports/plots") as tmp:
        write_figures(inputs, tmp)
        for rel, table in plot_tables(inputs).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_csv(tmp / rel, table)
    write_text("reports/report.md", render_report(inputs))
    write_text("reports/report.html", render_html(inputs, read_drilldown(names), images_from("reports/plots")))


if __name__ == "__main__":
    run_stage(main)
