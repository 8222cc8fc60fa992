"""Stage validate: fail on bad params in one line before any heavy stage runs.

`load_params` checks every key against core/schema.py (types, ranges, unknown keys); `check_params`
checks what spans sections (study models against the profile selection, judges, backends); and
dvc.yaml's generated regions must match the code and study.models (`valueharm dag`).
"""

from pathlib import Path

from valueharm.core.atomic import write_json
from valueharm.core.dag import stale_regions
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage
from valueharm.core.paths import path
from valueharm.experiments.validate import check_params


def main() -> None:
    params = load_params()
    check_params(params)
    stale = stale_regions(Path("dvc.yaml"), list(params["study"]["models"]))
    if stale:
        raise UserError(f"dvc.yaml is out of date for {', '.join(stale)}", "run `valueharm dag`, then repeat")
    # Constant content: the gate passes without making every downstream stage stale.
    write_json(path("validated"), {"params": "valid"})


if __name__ == "__main__":
    run_stage(main)
