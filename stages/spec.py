"""Stage <step>_spec: one file per pipeline step that stands for the step's code and params.

`python -m stages.spec train` writes artifacts/specs/train.json (`core.dag.step_spec`): the SHA-256
of every project file `stages/train.py` imports, transitively, and the values of the params that
`train_spec` declares in dvc.yaml. Every `train@<model>` depends on that one file instead of listing
~30 code files and reading params.yaml itself, so DVC re-runs exactly the same stages on an edit or a
param change but checks the code once per step, not once per model (issue 14: 640 stages stay fast).
"""

import sys
from pathlib import Path

import yaml

from valueharm.core.atomic import write_json
from valueharm.core.dag import step_spec
from valueharm.core.errors import UserError
from valueharm.core.params import load_raw_params
from valueharm.core.paths import path


def main(step: str) -> None:
    dvc_yaml = yaml.safe_load(Path("dvc.yaml").read_text(encoding="utf-8")) or {}
    spec = step_spec(step, dvc_yaml, load_raw_params())
    write_json(path("specs") / f"{step}.json", spec, precision=None)


if __name__ == "__main__":
    # Not core.params.run_stage: it would also write reports/perf/spec-<step>.json, an output no stage declares.
    try:
        if len(sys.argv) != 2:
            raise UserError("usage: python -m stages.spec STEP", "name a step, e.g. `python -m stages.spec train`")
        main(sys.argv[1])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
