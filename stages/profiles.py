"""Stage `profiles`: survey -> the study's value profiles (docs/design.md contract 1).

Reads the `profiles:` params section, selects the extreme anchors and their JSD-nearest
respondents, and writes artifacts/profiles/ atomically: manifest.json (contract 1),
survey_summary.json (per-value means/SDs, n, missing counts, value correlations),
value_structure.csv (DVC scatter plot) and value_structure.png (2-D MDS of the value correlations).
"""

from __future__ import annotations

from valueharm.core.params import load_params, run_stage, section
from valueharm.core.paths import path
from valueharm.profiles.selection import select_from_file, settings_from_params, write_outputs

OUT_DIR = path("profiles")


def main() -> None:
    params = load_params()
    p = section(params, "profiles")
    settings = settings_from_params(p)
    manifest, survey, scores = select_from_file(**settings)
    write_outputs(OUT_DIR, manifest, survey, scores, settings)
    print(
        f"profiles: {len(manifest['profiles'])} profiles from {scores.n_complete}/{survey.n_rows} "
        f"complete respondents ({scores.orientation}{', centred' if scores.centred else ''}) -> {OUT_DIR}"
    )


if __name__ == "__main__":
    run_stage(main)
