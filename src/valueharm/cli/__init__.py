"""The `valueharm` command line."""

from valueharm.cli.main import main

__all__ = ["main"]
