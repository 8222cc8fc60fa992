"""The `valueharm` command line: data, doctor, preset, profiles, analyze."""
from __future__ import annotations

import sys

import click

from .errors import UserError


@click.group()
def cli() -> None:
    """valueharm: the value-alignment harm study as a DVC pipeline."""


def main() -> None:
    try:
        cli(standalone_mode=True)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
