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
from valueharm.core.paths import path, per_model, report_file
from valueharm.report.html import images_from, read_drilldown, render_html
from valueharm.report.markdown import ReportInputs, plot_tables, read_training_curves, render_report, write_figures

ANALYSIS = path("analysis")


def _json(file: str | Path):
    file = Path(file)
    return json.loads(file.read_text(encoding="utf-8")) if file.exists() else None


def _csv(name: str):
    file = ANALYSIS / name
    return pd.read_csv(file) if file.exists() else None


def main() -> None:
    params = load_params()
    models = (_json(path("results") / "models.json") or {}).get("models", [])
    names = [m["name"] for m in models]
    inputs = ReportInputs(
        params=params,
        models=models,
        judge={n: j for n in names if (j := _json(per_model("judge_metrics", n, ".json")))},
        align={n: a for n in names if (a := _json(per_model("align_metrics", n, ".json")))},
        safety_tune=_json(report_file("safety_tune.json")),
        judge_model=_json(report_file("judge_model.json")),
        judge_validation=_json(report_file("judge_validation.json")),
        benchmarks=_json(report_file("benchmarks.json")),
        summary=_json(ANALYSIS / "summary.json"),
        correlations=_csv("correlations.csv"),
        hypotheses=_csv("hypotheses.csv"),
        groups=_csv("groups.csv"),
        paired=_csv("paired.csv"),
        model_table=_csv("models.csv"),
        focus=_json(report_file("focus.json")),
        mitigation=_json(report_file("mitigation.json")),
        expressed=_json(report_file("expressed.json")),
        training=read_training_curves(path("dvclive") / "train", names),
    )
    with atomic_dir(path("plots")) as tmp:
        write_figures(inputs, tmp)
        for rel, table in plot_tables(inputs).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            write_csv(tmp / rel, table)
    write_text(report_file("report.md"), render_report(inputs))
    write_text(report_file("report.html"), render_html(inputs, read_drilldown(names), images_from(path("plots"))))


if __name__ == "__main__":
    run_stage(main)
