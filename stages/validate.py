"""Stage validate: fail on bad params in one line before any heavy stage runs."""
from valueharm.atomic import write_json
from valueharm.params import load_params, run_stage
from valueharm.validate import check_params


def main() -> None:
    check_params(load_params())
    # Constant content: the gate passes without making every downstream stage stale.
    write_json("artifacts/validated.json", {"params": "valid"})


if __name__ == "__main__":
    run_stage(main)
