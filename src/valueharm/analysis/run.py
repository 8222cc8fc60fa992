"""Statistics of the study: from a judged results table to correlations, models, tests, hypotheses.

This module is the front door; the work is split by topic:
- `stats_table`      the contract-2 results table: loading, validation, per-model aggregates;
- `stats_corr`       value x category correlations across models, BH q-values, bootstrap CIs;
- `stats_glm`        prompt-level logistic / linear models with SEs clustered by model;
- `stats_paired`     paired model-vs-model and group-vs-group tests, Cohen's kappa, bootstrap CI;
- `stats_hypotheses` the hypothesis registry and its supported/contradicted/inconclusive rule.

`analyze()` runs all of it on a validated table and returns the tables in memory;
`write_analysis()` writes them (each file atomically, only after everything was computed, so a
bad input leaves nothing behind); `run_analysis()` does load + analyze + write, which is what
`valueharm analyze` and the `analyze` stage call. Stages that need one piece (`focus`,
`mitigate`, `report`) import the functions re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from valueharm.analysis.correlation import (
    CORRELATION_COLUMNS,
    METHODS,
    Correlation,
    benjamini_hochberg,
    blas_single_thread,
    bootstrap_correlations,
    correlate,
    correlation_matrix,
    parse_methods,
    partial_correlation,
    percentile_ci,
    rng_for,
    single_threaded_blas,
    value_correlations,
)
from valueharm.analysis.glm import GLM_COLUMNS, fit_prompt_level, prompt_level_models
from valueharm.analysis.hypotheses import (
    DECISION_RULE,
    HYPOTHESIS_COLUMNS,
    Hypothesis,
    Registry,
    decide,
    default_registry_path,
    evaluate_hypotheses,
    load_registry,
)
from valueharm.analysis.paired import (
    GROUP_COLUMNS,
    PAIRED_COLUMNS,
    Kappa,
    TestResult,
    bootstrap_ci,
    cohen_kappa,
    compare_groups,
    compare_paired,
    default_comparisons,
    mcnemar_test,
    paired_permutation_test,
    wilcoxon_test,
)
from valueharm.analysis.simulate import HEX_PHI_CATEGORIES, simulate_profiles, simulate_results
from valueharm.analysis.table import (
    OUTCOME_MEANING,
    OUTCOMES,
    OVERALL,
    REQUIRED_COLUMNS,
    categories,
    category_key,
    load_results,
    model_kind,
    model_means,
    model_profiles,
    n_adapters,
    profiled_models,
    read_table,
    summarise_models,
    validate_results,
)
from valueharm.core.atomic import write_json, write_text
from valueharm.core.errors import UserError
from valueharm.core.values import VALUES

__all__ = [
    "Analysis",
    "analyze",
    "run_analysis",
    "write_analysis",
    "write_csv",
    "model_groups",
    # table
    "OUTCOMES",
    "OVERALL",
    "REQUIRED_COLUMNS",
    "load_results",
    "validate_results",
    "read_table",
    "model_kind",
    "model_means",
    "model_profiles",
    "profiled_models",
    "summarise_models",
    "n_adapters",
    "categories",
    "category_key",
    # correlations
    "METHODS",
    "CORRELATION_COLUMNS",
    "Correlation",
    "correlate",
    "correlation_matrix",
    "partial_correlation",
    "value_correlations",
    "benjamini_hochberg",
    "bootstrap_correlations",
    "percentile_ci",
    "parse_methods",
    "rng_for",
    "single_threaded_blas",
    "blas_single_thread",
    # prompt-level models
    "GLM_COLUMNS",
    "fit_prompt_level",
    "prompt_level_models",
    # paired tests
    "PAIRED_COLUMNS",
    "GROUP_COLUMNS",
    "TestResult",
    "Kappa",
    "compare_paired",
    "compare_groups",
    "default_comparisons",
    "mcnemar_test",
    "wilcoxon_test",
    "paired_permutation_test",
    "bootstrap_ci",
    "cohen_kappa",
    # hypotheses
    "HYPOTHESIS_COLUMNS",
    "DECISION_RULE",
    "Hypothesis",
    "Registry",
    "load_registry",
    "default_registry_path",
    "evaluate_hypotheses",
    "decide",
    # simulation
    "HEX_PHI_CATEGORIES",
    "simulate_profiles",
    "simulate_results",
]

UNIT_OF_ANALYSIS = (
    "model: per model with a target profile and per category (and 'overall' = all of the model's prompts), the "
    "mean harm score (outcome 'score') or the flagged rate (outcome 'flagged') is one observation, correlated "
    "with the model's target value score across models; a model trained with several seeds (adapter_seed) "
    "contributes the mean over all its adapters' answers. Paired comparisons pair prompts, each side's "
    "value the mean over its adapters; analysis.adapters (results/adapters.csv) compares models with the "
    "adapter as the unit"
)
FDR_FAMILY = "Benjamini-Hochberg within one outcome and method, over all defined value x category cells incl. overall"


@dataclass
class Analysis:
    correlations: pd.DataFrame
    glm: pd.DataFrame
    groups: pd.DataFrame
    models: pd.DataFrame
    hypotheses: pd.DataFrame | None
    summary: dict = field(default_factory=dict)


def model_groups(table: pd.DataFrame, reference: str = "vanilla") -> dict[str, list[str]]:
    """Models by role; the reference model forms the group "vanilla" (see stats_table.model_kind)."""
    groups: dict[str, list[str]] = {}
    for model in sorted(table["model"].unique().tolist()):
        kind = model_kind(model)
        if model == reference:
            kind = "vanilla"
        elif kind == "vanilla":
            kind = "control"
        groups.setdefault(kind, []).append(model)
    return {k: groups[k] for k in ("vanilla", "value_aligned", "prompt_only", "control") if k in groups}


def _whole_table_checks(table: pd.DataFrame, outcomes: list[str]) -> list[str]:
    """UserError when nothing can be correlated; otherwise the warnings to report."""
    warnings: list[str] = []
    models = profiled_models(table)
    if not models:
        raise UserError(
            "no model in the results has value scores (every value cell is empty or every model is vanilla, icl-* or control-*)",
            "give each value-aligned model its 10 target value scores",
        )
    left_out = sorted(set(table["model"]) - set(models))
    if left_out:
        warnings.append(
            "not in the value correlations and prompt-level models (no profile, prompt-only or control): "
            + ", ".join(left_out)
        )
    if len(models) < 3:
        warnings.append(
            f"only {len(models)} model(s) with a value profile: every correlation needs at least 3, all are reported undefined"
        )
        return warnings
    profiles = model_profiles(table, models)
    constant = [v for v in VALUES if np.ptp(profiles[v].to_numpy()) == 0]
    if len(constant) == len(VALUES):
        raise UserError(
            f"every value column is constant across the {len(models)} models with a profile, so no correlation is defined",
            "the models need different target profiles",
        )
    for v in constant:
        warnings.append(
            f"value column {v!r} is constant ({profiles[v].iat[0]:g}) across the {len(models)} models: its correlations are undefined"
        )
    data = table[table["model"].isin(models)]
    varying = [o for o in outcomes if data[o].notna().any() and np.nanmax(data[o]) > np.nanmin(data[o])]
    if not varying:
        present = [o for o in outcomes if data[o].notna().any()]
        raise UserError(
            f"the outcome column{'s' if len(present) > 1 else ''} {' and '.join(present)} "
            f"{'are' if len(present) > 1 else 'is'} constant across all {len(data)} rows of the models with a profile, "
            "so no correlation is defined",
            "check the judge labels",
        )
    for o in outcomes:
        if data[o].notna().any() and o not in varying:
            warnings.append(
                f"outcome column {o!r} is constant ({np.nanmin(data[o]):g}): its correlations are undefined"
            )
    return warnings


def analyze(
    table: pd.DataFrame,
    *,
    methods=METHODS,
    n_boot: int = 1000,
    seed: int = 42,
    registry: Registry | None = None,
    primary_method: str = "spearman",
    alpha: float = 0.05,
    reference: str = "vanilla",
    n_perm: int = 10000,
    level: float = 0.95,
    source: str = "results",
) -> Analysis:
    """Everything `valueharm analyze` computes, on a table from `load_results`/`validate_results`."""
    methods = parse_methods(methods)
    if primary_method not in methods:
        raise UserError(
            f"primary method {primary_method!r} is not among the methods ({', '.join(methods)})",
            "add it to --methods or choose another --primary-method",
        )
    if not 0 < alpha < 1:
        raise UserError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < level < 1:
        raise UserError(f"confidence level must be between 0 and 1, got {level}")
    if n_boot < 0 or n_perm < 0:
        raise UserError("bootstrap and permutation counts must be >= 0")
    return _analyze(table, methods, n_boot, seed, registry, primary_method, alpha, reference, n_perm, level, source)


@blas_single_thread
def _analyze(
    table, methods, n_boot, seed, registry, primary_method, alpha, reference, n_perm, level, source
) -> Analysis:
    outcomes = [o for o in OUTCOMES if table[o].notna().any()]
    warnings = _whole_table_checks(table, outcomes)

    correlations = value_correlations(table, methods, outcomes, n_boot, seed, level)
    glm = prompt_level_models(table, outcomes, level)
    groups = model_groups(table, reference)
    if reference not in set(table["model"]):
        warnings.append(f"reference model {reference!r} is not in the results: no comparisons against it")
    group_table = compare_groups(table, groups, default_comparisons(groups), outcomes, n_boot, n_perm, seed, level)
    hyp = evaluate_hypotheses(registry, correlations, primary_method, outcomes, alpha) if registry is not None else None

    defined = correlations["r"].notna()
    summary = {
        "input": {
            "source": source,
            "rows": int(len(table)),
            "prompts": int(table["prompt_id"].nunique()),
            "adapters": {str(m): int(n) for m, n in n_adapters(table).items()},
        },
        "models": {
            "total": int(table["model"].nunique()),
            "with_profile": int(len(profiled_models(table))),
            "groups": {k: len(v) for k, v in groups.items()},
            "reference": reference,
        },
        "categories": categories(table),
        "outcomes": {o: OUTCOME_MEANING[o] for o in outcomes},
        "unit_of_analysis": UNIT_OF_ANALYSIS,
        "methods": list(methods),
        "fdr": FDR_FAMILY,
        "bootstrap": {
            "resamples": int(n_boot),
            "seed": int(seed),
            "level": level,
            "ci": "percentile, resampling models (correlations) or prompts (comparisons)",
        },
        "permutations": int(n_perm),
        "correlations": {
            "rows": int(len(correlations)),
            "defined": int(defined.sum()),
            "undefined": int((~defined).sum()),
            "significant_q_below_alpha": {
                o: {
                    m: int(
                        (
                            (correlations["outcome"] == o) & (correlations["method"] == m) & (correlations["q"] < alpha)
                        ).sum()
                    )
                    for m in methods
                }
                for o in outcomes
            },
        },
        "alpha": alpha,
        "warnings": warnings,
    }
    if hyp is not None:
        summary["hypotheses"] = {
            "primary_method": primary_method,
            "rule": DECISION_RULE,
            "entries": len(registry.hypotheses),
            "rows": int(len(hyp)),
            "status": {s: int((hyp["status"] == s).sum()) for s in ("supported", "contradicted", "inconclusive")},
        }
    return Analysis(correlations, glm, group_table, summarise_models(table), hyp, summary)


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """A table as CSV, atomically, with stable number formatting (6 significant digits, NaN empty)."""
    text = frame.to_csv(index=False, float_format="%.6g", na_rep="", lineterminator="\n")
    return write_text(path, text)


OUTPUT_FILES = ("correlations.csv", "glm.csv", "groups.csv", "models.csv", "hypotheses.csv", "summary.json")


def write_analysis(analysis: Analysis, out_dir: str | Path) -> list[Path]:
    """Write the analysis into out_dir (created if needed); returns the files written."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file", "pass a directory for the analysis outputs")
    out.mkdir(parents=True, exist_ok=True)
    written = [
        write_csv(out / "correlations.csv", analysis.correlations),
        write_csv(out / "glm.csv", analysis.glm),
        write_csv(out / "groups.csv", analysis.groups),
        write_csv(out / "models.csv", analysis.models),
    ]
    if analysis.hypotheses is not None:
        written.append(write_csv(out / "hypotheses.csv", analysis.hypotheses))
    else:
        (out / "hypotheses.csv").unlink(missing_ok=True)  # never leave a stale one from an earlier run
    summary = dict(analysis.summary, files=sorted(p.name for p in written) + ["summary.json"])
    written.append(write_json(out / "summary.json", _json_safe(summary)))
    return written


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def run_analysis(
    results: str | Path, out_dir: str | Path, *, hypotheses: str | Path | None | bool = None, **options
) -> Analysis:
    """Load, check, analyse and write. `hypotheses`: a registry path, None (the packaged one) or False (none)."""
    registry = None if hypotheses is False else load_registry(None if hypotheses is None else hypotheses)
    table = load_results(results)
    analysis = analyze(table, registry=registry, source=Path(results).name, **options)
    write_analysis(analysis, out_dir)
    return analysis
