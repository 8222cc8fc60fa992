"""End to end: real `dvc repro` and `dvc exp run` of the smoke preset in a temporary copy of the repo.

Checks the contracts every stage relies on: a first repro runs every stage, a second runs
nothing, a param change re-runs only its dependents, `dvc exp run -S value=...` re-runs only the
focus-side stages (never training), experiments diff cleanly, and a bad value fails before work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=valueharm-test", "-c", "user.email=test@valueharm.invalid"]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run in `cwd` with the venv first on PATH; `cwd`'s own src/ first on the import path, so stages
    execute the copy's code (the one DVC hashes), not the editable install's."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(cwd / "src")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def commit_all(work: Path, message: str) -> None:
    run([*GIT, "add", "-A"], work)
    run([*GIT, "commit", "-qm", message, "--allow-empty"], work)


@pytest.fixture(scope="module")
def smoke_repo(repo_root, default_data, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], repo_root).stdout.split("\n")
    for name in filter(None, listed):
        src = repo_root / name
        if src.is_file() and not name.startswith(("reports/", "dvc.lock")):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    shutil.copytree(default_data, work / "data")
    run(["git", "init", "-q", "-b", "main"], work)
    run(["valueharm", "preset", "smoke"], work)
    run(["valueharm", "data", "check"], work)
    commit_all(work, "copy")
    return work


@pytest.fixture(scope="module")
def models(smoke_repo) -> list[str]:
    return yaml.safe_load((smoke_repo / "params.yaml").read_text())["study"]["models"]


@pytest.fixture(scope="module")
def first_repro(smoke_repo) -> str:
    out = run(["dvc", "repro"], smoke_repo).stdout
    commit_all(smoke_repo, "first repro")
    return out


def test_first_repro_runs_every_stage(smoke_repo, models, first_repro):
    steps = ("train", "align_check", "generate", "judge")
    per_model = {f"{stage}@{m}" for stage in steps for m in models}
    specs = {f"{step}_spec" for step in steps}  # each step's code and params, one file per step
    single = specs | {
        "validate",
        "base_model",
        "safety_tune",
        "profiles",
        "benchmarks",
        "judge_model",
        "expressed",
        "results",
        "analyze",
        "manipulation",
        "judge_validation",
        "focus",
        "mitigate",
        "report",
    }
    assert ran_stages(first_repro) == single | per_model
    validation = json.loads((smoke_repo / "reports/judge_validation.json").read_text())
    assert validation, "judge_validation wrote no metrics"
    manifest = json.loads((smoke_repo / "artifacts/profiles/manifest.json").read_text())
    assert [p["name"] for p in manifest["profiles"]] == ["hedonism", "hedonism-r01", "power", "power-r01"]
    safety = json.loads((smoke_repo / "reports/safety_tune.json").read_text())
    assert safety["enabled"] is True and 0 <= safety["refusal_rate_harmful"] <= 1
    metrics = json.loads((smoke_repo / "reports/metrics.json").read_text())
    assert metrics and "overall" in metrics
    assert "headline" in metrics and "manipulation" in metrics
    manipulation = json.loads((smoke_repo / "reports/manipulation.json").read_text())
    assert {"focus", "focus_passed"} <= set(manipulation) and isinstance(manipulation["focus_passed"], bool)
    keys = {"passed", "shift", "p", "n_items", "method", "transfer_shift", "transfer_passed"}
    assert all(set(v) == keys for k, v in manipulation.items() if k not in ("focus", "focus_passed"))
    correlations = (smoke_repo / "reports/analysis/correlations.csv").read_text().splitlines()[0]
    assert correlations.startswith("value,category,method,r,p,q,ci_low,ci_high,n")
    assert "## " in (smoke_repo / "reports/report.md").read_text()


def test_replicate_adapters_are_generated_judged_and_the_unit(smoke_repo, models, first_repro):
    """study.seeds [42, 43] in the smoke preset: each trained model's second adapter answers and is
    judged, adapters.csv has one row per adapter, and the headline counts adapters, not prompts."""
    seeds = yaml.safe_load((smoke_repo / "params.yaml").read_text())["study"]["seeds"]
    assert len(seeds) == 2
    adapters = pd.read_csv(smoke_repo / "artifacts/results/adapters.csv")
    for model in models:
        spec = json.loads((smoke_repo / f"artifacts/models/{model}/spec.json").read_text())
        replicate_rows = [
            json.loads(line)
            for line in (smoke_repo / f"artifacts/labels/replicates/{model}.jsonl").read_text().splitlines()
        ]
        rows = adapters[adapters["model"] == model]
        if "adapter_sha256" in spec:  # trained: one adapter per seed, the replicate judged on every prompt
            n_prompts = sum(1 for _ in (smoke_repo / f"artifacts/labels/{model}.jsonl").open())
            assert sorted(rows["adapter_seed"]) == seeds and {r["adapter_seed"] for r in replicate_rows} == {43}
            assert len(replicate_rows) == n_prompts and (rows["n"] == n_prompts).all()
            assert spec["replicates"]["42"] != spec["replicates"]["43"]  # distinct adapters
        else:
            assert len(rows) == 1 and rows["adapter_seed"].isna().all() and replicate_rows == []
    metrics = json.loads((smoke_repo / "reports/metrics.json").read_text())
    assert metrics["headline"]["n_adapters"] == 2
    assert metrics["adapters"]["flagged"]["n_focus"] == metrics["adapters"]["flagged"]["n_control"] == 2
    assert metrics["adapters"]["flagged"]["p_min"] == pytest.approx(1 / 3)
    assert "Adapter level (seeds as the unit)" in (smoke_repo / "reports/report.md").read_text()
    # the analyses read every adapter's answers: results.csv has one block per (trained model, seed)
    results = pd.read_csv(smoke_repo / "artifacts/results/results.csv")
    for model in models:
        seen = sorted(results.loc[results["model"] == model, "adapter_seed"].dropna().astype(int).unique())
        assert seen in (seeds, []), (model, seen)
    summary = json.loads((smoke_repo / "reports/analysis/summary.json").read_text())
    assert any(n == 2 for n in summary["input"]["adapters"].values())
    # and mitigation runs every adapter of the focus model
    mitigation = json.loads((smoke_repo / "reports/mitigation.json").read_text())
    assert mitigation["n_adapters"] == 2
    assert all(r["n_adapters"] == 2 and r["p_min"] == 0.5 for r in mitigation["adapter_gains"])
    mit_labels = [json.loads(x) for x in (smoke_repo / "artifacts/mitigation/labels.jsonl").read_text().splitlines()]
    focus_model = mitigation["model"]
    assert {r["adapter_seed"] for r in mit_labels if r["model"] == focus_model} == set(seeds)


def test_second_repro_runs_nothing(smoke_repo, first_repro):
    out = run(["dvc", "repro"], smoke_repo).stdout
    assert ran_stages(out) == set(), out
    assert run(["dvc", "status"], smoke_repo).stdout.strip().endswith("Data and pipelines are up to date.")


def test_param_change_reruns_only_dependents(smoke_repo, first_repro):
    params = smoke_repo / "params.yaml"
    original = params.read_text()
    data = yaml.safe_load(original)
    data["report"]["dpi"] -= 20
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        out = run(["dvc", "repro"], smoke_repo).stdout
        assert ran_stages(out) == {"validate", "report"}, out  # validate checks the whole params.yaml
    finally:
        params.write_text(original)
        run(["dvc", "repro"], smoke_repo)
        commit_all(smoke_repo, "restore")


def test_exp_run_per_value_reuses_training_and_diffs(smoke_repo, first_repro):
    focus_side = {"validate", "manipulation", "focus", "mitigate", "report"}  # manipulation names the focus
    outs = {}
    for value in ("power", "hedonism"):
        proc = run(["dvc", "exp", "run", "-n", f"focus-{value}", "-S", f"value={value}"], smoke_repo)
        assert ran_stages(proc.stdout) <= focus_side, proc.stdout
        outs[value] = json.loads((smoke_repo / "reports/metrics.json").read_text())
    assert outs["power"] != outs["hedonism"]
    diff = run(["dvc", "exp", "diff", "focus-power", "focus-hedonism", "--json"], smoke_repo).stdout
    assert "reports/metrics.json" in diff
    shown = json.loads(run(["dvc", "exp", "show", "--json"], smoke_repo).stdout)
    assert "focus-power" in json.dumps(shown) and "focus-hedonism" in json.dumps(shown)
    metrics_diff = run(["dvc", "metrics", "diff", "HEAD", "--json"], smoke_repo)
    assert metrics_diff.returncode == 0


def lock_outs(repo: Path) -> dict[str, str]:
    """Every stage output's hash in dvc.lock, except timing files (reports/perf), which vary by run."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {
        out["path"]: out.get("md5") or out.get("hash", "")
        for body in lock.values()
        for out in body.get("outs", [])
        if not out["path"].startswith("reports/perf")
    }


def changed_stages(repo: Path) -> set[str]:
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    return set(status)


def test_library_edit_reruns_exactly_its_dependents(smoke_repo, models, first_repro):
    """alignment/examples.py is imported by train and by validate's seed check: dvc sees exactly those.

    The per-model stages see code through their step's spec file: the edit changes train_spec, and
    once train_spec has run, exactly every train@<model> (nothing else) is out of date."""
    module = smoke_repo / "src/valueharm/alignment/examples.py"
    original = module.read_text()
    module.write_text(original + "\n# an edit that changes no behaviour\n")
    try:
        assert changed_stages(smoke_repo) == {"train_spec", "validate"}
        dry = ran_stages(run(["dvc", "repro", "--dry"], smoke_repo).stdout)
        assert "train_spec" in dry
        assert not dry & {"base_model", "safety_tune", "profiles", "benchmarks", "judge_model", "align_check_spec"}
        run(["dvc", "repro", "train_spec"], smoke_repo)
        assert changed_stages(smoke_repo) == {f"train@{m}" for m in models} | {"validate"}
    finally:
        module.write_text(original)
    run(["dvc", "repro", "train_spec"], smoke_repo)  # back to the original spec file
    assert changed_stages(smoke_repo) == set()


def test_reverting_a_param_restores_from_the_run_cache(smoke_repo, models, first_repro):
    params = smoke_repo / "params.yaml"
    original = params.read_text()
    before = lock_outs(smoke_repo)
    data = yaml.safe_load(original)
    data["align_check"]["sampling"]["max_new_tokens"] += 1
    params.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        changed = run(["dvc", "repro"], smoke_repo).stdout
        assert {f"align_check@{m}" for m in models} <= ran_stages(changed), changed
    finally:
        params.write_text(original)
    restored = run(["dvc", "repro"], smoke_repo).stdout
    for m in models:
        assert f"Stage 'align_check@{m}' is cached - skipping run" in restored, restored
    assert not {f"align_check@{m}" for m in models} & ran_stages(restored)
    assert lock_outs(smoke_repo) == before
    commit_all(smoke_repo, "run-cache restore")


def test_run_cache_round_trips_through_a_remote(smoke_repo, first_repro, tmp_path):
    """Push the run-cache from one clone, pull it into a fresh one without dvc.lock: nothing re-runs.

    The remote is configured in each clone's local config (`--local`), as a user with their own
    storage would; `dvc repro --pull` fetches the outputs the run-cache entries point at.
    """
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote)], smoke_repo)
    run(["dvc", "push", "--run-cache", "-q"], smoke_repo)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(smoke_repo), str(clone)], tmp_path)
    shutil.copytree(smoke_repo / "data", clone / "data")
    (clone / "dvc.lock").unlink()
    run(["dvc", "remote", "add", "--local", "-f", "-d", "shared", str(remote)], clone)
    run(["dvc", "fetch", "--run-cache", "-q"], clone, check=False)  # no dvc.lock: only run-cache entries
    out = run(["dvc", "repro", "--pull", "judge@vanilla"], clone).stdout
    assert "Stage 'judge@vanilla' is cached - skipping run" in out, out
    assert ran_stages(out) <= {"validate"}, out
    assert (clone / "artifacts/labels/vanilla.jsonl").read_bytes() == (
        smoke_repo / "artifacts/labels/vanilla.jsonl"
    ).read_bytes()


@pytest.mark.slow
def test_queued_shards_equal_the_sequential_run(smoke_repo, first_repro, tmp_path):
    """`valueharm shard --run` (two CPU workers through DVC's queue) gives the sequential run's outputs."""
    clone = tmp_path / "sharded"
    run(["git", "clone", "-q", str(smoke_repo), str(clone)], tmp_path)
    shutil.copytree(smoke_repo / "data", clone / "data")
    (clone / "dvc.lock").unlink()
    commit_all(clone, "no lock")
    run(["valueharm", "shard", "--workers", "2", "--run"], clone)
    assert lock_outs(clone) == {k: v for k, v in lock_outs(smoke_repo).items()}


def test_invalid_value_fails_before_any_work(smoke_repo, first_repro):
    proc = run(["dvc", "exp", "run", "-S", "value=hedonsim"], smoke_repo, check=False)
    assert proc.returncode != 0
    assert ran_stages(proc.stdout) == {"validate"}, proc.stdout
    message = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "hedonism" in message[0] and "power" in message[0]
