"""Stage validate: fail on bad params in one line before any heavy stage runs."""

from valueharm.core.atomic import write_json
from valueharm.core.params import load_params, run_stage
from valueharm.experiments.validate import check_params


def main() -> None:
    check_params(load_params())
    # Constant content: the gate passes without making every downstream stage stale.
    write_json("artifacts/validated.json", {"params": "valid"})


if __name__ == "__main__":
    run_stage(main)
