"""Stage results: every study model's judge labels and target profile in one long table
(docs/design.md contract 2) -> artifacts/results/results.csv, and what each model is -> models.json.
"""

import json
from pathlib import Path

from valueharm.analysis.results import results_table
from valueharm.analysis.run import write_csv
from valueharm.core.atomic import read_jsonl, write_json
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section

OUT, MODELS = "artifacts/results/results.csv", "artifacts/results/models.json"


def _read(path: Path, stage: str):
    if not path.exists():
        raise UserError(f"{path} not found", f"run `dvc repro {stage}`")
    return json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else read_jsonl(path)


def main() -> None:
    params = load_params()
    names = list(section(params, "study").get("models") or [])
    specs = [_read(Path(f"artifacts/models/{n}/spec.json"), f"train@{n}") for n in names]
    labels = {n: _read(Path(f"artifacts/labels/{n}.jsonl"), f"judge@{n}") for n in names}
    table, models = results_table(specs, labels)
    write_csv(OUT, table)
    write_json(MODELS, {"models": models, "rows": int(len(table)), "columns": list(table.columns)})


if __name__ == "__main__":
    run_stage(main)
