"""Stage analyze: the statistics of every judged model (valueharm.analysis.run.run_analysis) ->
reports/analysis/{correlations,glm,groups,models,hypotheses}.csv + summary.json, plus
paired.csv (each model vs the reference on the same prompts)."""

import sys

from valueharm.analysis.results import paired_vs_reference
from valueharm.analysis.run import METHODS, load_results, run_analysis, write_csv
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import path

RESULTS, OUT = path("results") / "results.csv", path("analysis")


def main() -> None:
    params = load_params()
    p = section(params, "analyze")
    seed = int(params.get("seed", 42))
    reference = p.get("reference", "vanilla")
    n_boot, n_perm = int(p.get("bootstrap", 1000)), int(p.get("permutations", 10000))
    hypotheses = p.get("hypotheses")  # null: the packaged registry; false: none; else a path
    analysis = run_analysis(
        RESULTS,
        OUT,
        hypotheses=hypotheses,
        methods=p.get("methods", METHODS),
        n_boot=n_boot,
        seed=seed,
        reference=reference,
        primary_method=p.get("primary_method", "spearman"),
        alpha=float(p.get("alpha", 0.05)),
        n_perm=n_perm,
    )
    for warning in analysis.summary.get("warnings", []):
        print(f"analyze: warning: {warning}", file=sys.stderr)
    paired = paired_vs_reference(load_results(RESULTS), reference, n_boot=n_boot, n_perm=n_perm, seed=seed)
    write_csv(OUT / "paired.csv", paired)


if __name__ == "__main__":
    run_stage(main)
