"""Stage base_model: materialise `model.name` as artifacts/base_model (safetensors, or a reference)."""

from valueharm.core.atomic import write_json
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import path, report_file
from valueharm.models.base import build_base_model


def main() -> None:
    model = section(load_params(), "model")
    info = build_base_model(model["name"], model.get("revision"), "data", path("base_model"))
    write_json(report_file("base_model.json"), {k: v for k, v in info.items() if k != "path"})


if __name__ == "__main__":
    run_stage(main)
