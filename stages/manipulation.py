"""Stage manipulation: the manipulation check of every model with a target profile, at two levels
(forced: the model learned its profile; transfer: it applies it to portraits it reads itself), from
the align_check likelihood views, each item paired with vanilla's. Writes reports/manipulation.json
(the contract: per model passed/shift/p/n_items/method/transfer_shift/transfer_passed, plus focus and
focus_passed) and reports/manipulation_detail.json (every view, groups, replicates, baselines).
"""

import json

from valueharm.core.atomic import write_json
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import align_file, per_model, report_file
from valueharm.evaluation.questionnaire import alignment_metrics, baselines
from valueharm.experiments.focus import resolve_focus
from valueharm.experiments.manipulation import (
    check_manipulation_params,
    check_model,
    manipulation_report,
    replicate_summary,
)


def _read(model: str) -> tuple[dict, list[dict]]:
    report, items = per_model("align_metrics", model, ".json"), align_file(model)
    if not report.exists() or not items.exists():
        raise UserError(f"align_check outputs of {model} not found", f"run `dvc repro align_check@{model}`")
    rows = [json.loads(line) for line in items.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(report.read_text(encoding="utf-8")), rows


def main() -> None:
    params = load_params()
    p = check_manipulation_params(section(params, "manipulation"))
    seed = int(params.get("seed", 42))
    names = list(section(params, "study").get("models") or [])
    vanilla_report, vanilla_rows = _read("vanilla")
    vanilla_items = {r["item"]: r["views"] for r in vanilla_rows}
    entries, detail, models = {}, {}, []
    for name in names:
        if name == "vanilla":
            continue
        report, rows = _read(name)
        target = report.get("target")
        models.append({"name": name, "kind": report.get("kind"), "profile": name, "target": target})
        if not target:
            continue
        values = {r["item"]: r["value"] for r in rows}
        reverse = {r["item"]: bool(r.get("reverse")) for r in rows}
        result = check_model({r["item"]: r["views"] for r in rows}, vanilla_items, values, reverse, target, p, seed)
        entries[name] = result["entry"]
        replicates = {}
        for s, views in (rows[0].get("replicate_views") or {}).items() if rows else []:
            rep_items = {r["item"]: r["replicate_views"][s] for r in rows}
            replicates[s] = check_model(rep_items, vanilla_items, values, reverse, target, p, seed)["entry"]
        detail[name] = {
            **result["detail"],
            "replicates": replicates,
            # every adapter of the model (the first seed and its replicates): the adapter as unit
            "adapters": {
                **replicate_summary([result["entry"].get("shift"), *(e.get("shift") for e in replicates.values())]),
                "passed": int(bool(result["entry"].get("passed")))
                + sum(bool(e.get("passed")) for e in replicates.values()),
            },
            "baselines": {
                **baselines(target, vanilla_report.get("profile")),
                "model": (report.get("alignment") or {}).get("nmse"),
                "vanilla_alignment": alignment_metrics(vanilla_report.get("profile") or {}, target),
            },
        }
    focus = None
    try:
        focus = resolve_focus(params.get("value"), models)["model"]
    except UserError:
        focus = None  # no adapter for the value: the focus stage says so in one line
    out = manipulation_report(entries, focus)
    write_json(report_file("manipulation.json"), out)
    write_json(report_file("manipulation_detail.json"), {"params": p, "models": detail})


if __name__ == "__main__":
    run_stage(main)
