"""How fast DVC handles the paper-scale DAG (154 profiles + baselines, ~640 stages) with every output present.

Builds a throwaway copy of the repository (git-tracked files + data/) in a temp folder, writes params
for the paper's 154 profiles plus icl- baselines and controls on the smoke settings, regenerates
dvc.yaml's regions, fills every stage output with a small synthetic file, records them with
`dvc commit`, then times `dvc stage list`, `dvc status` and a no-op `dvc repro`. Prints JSON.
Usage: python bench/dag_scale.py [--data data] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    sh(cmd, cwd)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(REPO / "data"))
    parser.add_argument("--keep", default=None)
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="dag-scale-")) / "repo"
    for name in sh(["git", "ls-files"], REPO).stdout.split("\n"):
        src = REPO / name
        if name and src.is_file() and not name.startswith(("reports/", "dvc.lock")):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    shutil.copytree(args.data, work / "data")
    sh(["git", "init", "-q"], work)
    sh(["valueharm", "preset", "smoke"], work)
    from valueharm.profiles.selection import profile_names

    profiles = profile_names("all", "all", 10)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profiles"].update({"nearest": 10, "anchors": "all", "ranks": "all"})
    params["study"]["models"] = [
        "vanilla",
        *profiles,
        "icl-hedonism",
        "icl-power",
        "control-shuffled",
        "control-benign",
    ]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["valueharm", "dag"], work)
    names = [line.split()[0] for line in sh(["dvc", "stage", "list"], work).stdout.splitlines() if line.strip()]
    # Synthetic outputs: every declared out exists (a folder gets one file).
    import dvc.repo

    repo = dvc.repo.Repo(str(work))
    for stage in repo.index.stages:
        for out in stage.outs:
            path = Path(out.fs_path)
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{stage.addressing}\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "synthetic.txt").write_text(f"{stage.addressing}\n")
    for stage in repo.index.stages:  # deps inside a folder output (artifacts/profiles/manifest.json)
        for dep in stage.deps:
            path = Path(dep.fs_path)
            if not path.exists() and path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("synthetic\n")
    repo.close()
    commit_s = timed(["dvc", "commit", "-f", "-q"], work)
    result = {
        "stages": len(names),
        "models": len(params["study"]["models"]),
        "dvc_commit_s": commit_s,
        "dvc_stage_list_s": timed(["dvc", "stage", "list"], work),
        "dvc_status_s": timed(["dvc", "status"], work),
        "dvc_repro_noop_s": timed(["dvc", "repro"], work),
        "dvc_status_again_s": timed(["dvc", "status"], work),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
