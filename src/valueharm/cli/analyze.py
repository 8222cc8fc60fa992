"""`valueharm analyze`: contract 2 of docs/design.md as a click command (registered by cli.py)."""

from __future__ import annotations

from pathlib import Path

import click

from valueharm.core.errors import UserError

DEFAULT_METHODS = "pearson,spearman,kendall,partial_pearson,partial_spearman"


@click.command("analyze")
@click.option(
    "--results",
    required=True,
    metavar="FILE",
    help="Long results table (CSV or JSONL): model, prompt_id, category, score (1-5), flagged (0/1), 10 value columns.",
)
@click.option("--out", "out_dir", required=True, metavar="DIR", help="Output directory (created if missing).")
@click.option(
    "--hypotheses",
    metavar="FILE",
    default=None,
    help="Hypothesis registry YAML [default: the packaged corpora/hypotheses.yaml].",
)
@click.option("--no-hypotheses", is_flag=True, help="Do not check a registry (no hypotheses.csv).")
@click.option(
    "--methods",
    default=DEFAULT_METHODS,
    show_default=True,
    help="Comma-separated: pearson, spearman, kendall, partial_pearson, partial_spearman.",
)
@click.option(
    "--bootstrap", "n_boot", default=1000, show_default=True, type=int, help="Bootstrap resamples for CIs (0: no CIs)."
)
@click.option("--seed", default=42, show_default=True, type=int, help="Seed for bootstrap and permutations.")
@click.option("--reference", default="vanilla", show_default=True, help="Reference model of the group comparisons.")
@click.option("--primary-method", default="spearman", show_default=True, help="Method the hypotheses are judged on.")
@click.option("--alpha", default=0.05, show_default=True, type=float, help="q threshold of the hypothesis rule.")
@click.option(
    "--permutations",
    "n_perm",
    default=10000,
    show_default=True,
    type=int,
    help="Sign-flip permutations per paired test.",
)
def analyze(
    results: str,
    out_dir: str,
    hypotheses: str | None,
    no_hypotheses: bool,
    methods: str,
    n_boot: int,
    seed: int,
    reference: str,
    primary_method: str,
    alpha: float,
    n_perm: int,
) -> None:
    """Correlate models' target values with their harm per category; write DIR/correlations.csv and more.

    Unit of analysis: the model (its mean score / flagged rate per category and overall).
    Writes correlations.csv (value, category, method, r, p, q, ci_low, ci_high, n, outcome,
    note), glm.csv, groups.csv, models.csv, hypotheses.csv and summary.json. A bad input
    fails with one line and writes nothing.
    """
    from valueharm.analysis.run import run_analysis  # heavy imports only when the command runs

    if no_hypotheses and hypotheses:
        raise UserError("--hypotheses and --no-hypotheses contradict each other", "pass one of them")
    registry = False if no_hypotheses else hypotheses
    analysis = run_analysis(
        results,
        out_dir,
        hypotheses=registry,
        methods=methods,
        n_boot=n_boot,
        seed=seed,
        reference=reference,
        primary_method=primary_method.strip().lower(),
        alpha=alpha,
        n_perm=n_perm,
    )
    for warning in analysis.summary.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    corr = analysis.correlations
    defined = int(corr["r"].notna().sum())
    significant = int((corr["q"] < alpha).sum())
    out = Path(out_dir)
    click.echo(
        f"wrote {out / 'correlations.csv'}: {len(corr)} rows, {defined} defined, {significant} with q < {alpha:g}"
    )
    if analysis.hypotheses is not None:
        counts = analysis.summary["hypotheses"]["status"]
        click.echo(f"wrote {out / 'hypotheses.csv'}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    click.echo(f"wrote {out / 'glm.csv'}, {out / 'groups.csv'}, {out / 'models.csv'}, {out / 'summary.json'}")
