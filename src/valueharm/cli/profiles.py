"""`valueharm profiles select`: docs/design.md contract 1, the way others check the selection.

    valueharm profiles select --survey FILE --format items|scores --orientation raw|reversed
                              --nearest K --out FILE.json [--centre/--no-centre] [--anchors SPEC]
                              [--ties file|release]

Bad input raises `UserError` (the CLI's main prints one line and exits 2) before anything is
written; the output JSON is written atomically.
"""

from __future__ import annotations

import click

from valueharm.core.atomic import write_json
from valueharm.data.survey import DEFAULT_ORIENTATION, FORMATS, ORIENTATIONS
from valueharm.profiles.selection import TIES, select_from_file


@click.group("profiles")
def profiles() -> None:
    """Value profiles from survey data (extreme anchors and JSD-nearest respondents)."""


@profiles.command("select")
@click.option("--survey", "survey", required=True, metavar="FILE", help="Survey CSV (ESS items or 10 value scores).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="items",
    show_default=True,
    help="items: the 21 ESS PVQ-21 columns (codes 1..6, 7+ missing); scores: the 10 value columns.",
)
@click.option(
    "--orientation",
    type=click.Choice(ORIENTATIONS),
    default=DEFAULT_ORIENTATION,
    show_default=True,
    help="raw: ESS coding (1 = very much like me, as the released selection); "
    "reversed: 7 - x, 6 = most important (what VIM training assumes).",
)
@click.option(
    "--nearest",
    "nearest_k",
    type=int,
    default=10,
    show_default=True,
    metavar="K",
    help="Respondents per anchor, nearest by Jensen-Shannon divergence.",
)
@click.option(
    "--centre/--no-centre",
    default=False,
    show_default=True,
    help="Centre each value score on the respondent's mean over all 21 items (items format only).",
)
@click.option(
    "--anchors",
    default="all",
    show_default=True,
    metavar="SPEC",
    help="all | values | groups | comma-separated value or group names.",
)
@click.option(
    "--ties",
    type=click.Choice(TIES),
    default="file",
    show_default=True,
    help="Order of respondents at equal divergence: file order, or the released selection's "
    "(numpy's unstable quicksort over the whole table; docs/paper.md).",
)
@click.option("--out", "out", required=True, metavar="FILE.json", help="Where to write the profile manifest.")
def select(
    survey: str, fmt: str, orientation: str, nearest_k: int, centre: bool, anchors: str, ties: str, out: str
) -> None:
    """Select the extreme anchors and each one's K nearest respondents; write the manifest."""
    manifest, _, scores = select_from_file(survey, fmt, orientation, nearest_k, centre, anchors, "all", ties)
    write_json(out, manifest)
    click.echo(
        f"wrote {len(manifest['profiles'])} profiles from {scores.n_complete} complete respondents "
        f"({orientation}{', centred' if centre else ''}) to {out}"
    )
