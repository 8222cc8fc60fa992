"""Stage benchmarks: load every benchmark of params `benchmarks`, map categories, sample (seeded,
stratified), and write the one prompt table every model answers, with a crosswalk report."""

from valueharm.core.atomic import write_json, write_jsonl
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import path, report_file
from valueharm.data.benchmarks import load_from_config


def main() -> None:
    params = load_params()
    configs = section(params, "benchmarks")
    seed = int(params.get("seed", 42))
    rows, reports = [], []
    for name, cfg in configs.items():
        bench = load_from_config(name, cfg, seed)
        reports.append(bench.report())
        rows += [{**item, "benchmark": name} for item in bench.items]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise UserError("two benchmarks share prompt ids", "give each benchmark its own id prefix")
    write_jsonl(path("benchmarks"), rows)
    write_json(report_file("benchmarks.json"), {"n_prompts": len(rows), "benchmarks": reports})


if __name__ == "__main__":
    run_stage(main)
