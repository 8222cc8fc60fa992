"""Stage results: every study model's judge labels and target profile in one long table
(docs/design.md contract 2; one row per model, adapter and prompt, every seed of study.seeds) ->
artifacts/results/results.csv, what each model is -> models.json, and one row per adapter (model x
seed, outcome means) -> adapters.csv.
"""

import json
from pathlib import Path

from valueharm.analysis.adapters import adapter_table
from valueharm.analysis.results import results_table
from valueharm.analysis.run import write_csv
from valueharm.core.atomic import read_jsonl, write_json
from valueharm.core.errors import UserError
from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import labels_file, model_dir, path, replicate_labels_file

OUT, MODELS = path("results") / "results.csv", path("results") / "models.json"
ADAPTERS = path("results") / "adapters.csv"


def _read(file: Path, stage: str):
    if not file.exists():
        raise UserError(f"{file} not found", f"run `dvc repro {stage}`")
    return json.loads(file.read_text(encoding="utf-8")) if file.suffix == ".json" else read_jsonl(file)


def main() -> None:
    params = load_params()
    names = list(section(params, "study").get("models") or [])
    specs = [_read(model_dir(n) / "spec.json", f"train@{n}") for n in names]
    labels = {n: _read(labels_file(n), f"judge@{n}") for n in names}
    replicates = {n: read_jsonl(replicate_labels_file(n)) for n in names if replicate_labels_file(n).exists()}
    table, models = results_table(specs, labels, replicates)
    write_csv(OUT, table)
    write_csv(ADAPTERS, adapter_table(specs, labels, replicates))
    write_json(MODELS, {"models": models, "rows": int(len(table)), "columns": list(table.columns)})


if __name__ == "__main__":
    run_stage(main)
