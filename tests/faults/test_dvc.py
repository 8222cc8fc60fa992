"""Faults around real `dvc repro` runs on the smoke preset (two study models):

- kill -9 of `dvc repro` (DVC and its stage, the whole process group) during train, generate,
  judge and report, then a plain rerun: the rerun re-runs the killed stage, dvc.lock records the
  same output hashes as the uninterrupted run, and no temporary file of our writers is left in the work tree (core/atomic.py keeps them under
  .dvc/tmp/valueharm, where the next write sweeps a killed writer's);
- two `dvc repro` at once: the second fails with DVC's lock message and corrupts nothing.

The reference is the uninterrupted `dvc repro judge@hedonism` (and, for the report kill
point, the whole pipeline). Each kill point forces one stage (`dvc repro -f -s STAGE`), kills it
mid-work and reruns. Every check runs in `make test` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import kill_group, leftover_temps, lock_outs, run, start, wait_for_text

TEMPS = ".dvc/tmp/valueharm"  # where our writers keep their temporary files inside a DVC repo (core/atomic.py)
TARGET = "judge@hedonism"  # validate, base_model, safety_tune, profiles, train, benchmarks, generate, judge


@pytest.fixture(scope="module")
def reference(fault_repo) -> dict:
    run(["dvc", "repro", TARGET], fault_repo)
    assert leftover_temps(fault_repo) == []
    return lock_outs(fault_repo)


@pytest.fixture(scope="module")
def full_reference(fault_repo, reference) -> dict:
    run(["dvc", "repro"], fault_repo)
    return lock_outs(fault_repo)


def temps_under(repo: Path, folders: tuple[str, ...]) -> list[Path]:
    """Temporary files of writers that run now (a killed writer's leftover, swept later, does not count)."""
    import re

    from valueharm.core.atomic import _alive

    out = []
    for folder in folders:
        base = repo / folder
        if base.is_dir():
            for p in base.rglob("*.tmp"):
                match = re.match(r"^\..+\.(\d+)-[^/]*\.tmp$", p.name)
                if match and _alive(int(match.group(1))):
                    out.append(p)
    return out


def kill_during(
    repo: Path,
    stage: str,
    log: Path,
    *,
    temp_in: tuple[str, ...] = (),
    text: str | None = None,
    delay: float = 0.0,
) -> str:
    """Start `dvc repro -f -s stage`, wait until the stage works (a temporary output appears in
    temp_in, or `text` is logged, or `delay` seconds pass), then kill -9 the process group.
    Returns what triggered the kill."""
    proc = start(["dvc", "repro", "-f", "-s", stage], repo, log)
    try:
        wait_for_text(log, f"Running stage '{stage}'", proc)
        started = time.monotonic()
        trigger = None
        while trigger is None:
            if proc.poll() is not None:
                raise AssertionError(f"{stage} finished before the kill point:\n{log.read_text()[-3000:]}")
            if temp_in and temps_under(repo, temp_in):
                time.sleep(0.5)  # well inside the write, not at its first byte
                trigger = "temporary output present"
            elif text and text in log.read_text(errors="replace"):
                trigger = f"logged {text!r}"
            elif delay and time.monotonic() - started >= delay:
                trigger = f"{delay:g} s into the stage"
            elif time.monotonic() - started > 600:
                raise AssertionError(f"no kill point reached for {stage}")
            time.sleep(0.02)
    finally:
        kill_group(proc)
    return trigger


def mid_stage(repo: Path, perf_stem: str) -> float:
    """Half the stage's own run time in the reference run (reports/perf/<stem>.json, this machine): a kill
    point inside the stage's work however fast the machine is."""
    import json

    return 0.5 * float(json.loads((repo / "reports" / "perf" / f"{perf_stem}.json").read_text())["total_s"])


def rerun_matches(repo: Path, stage: str, target: str | None, reference: dict) -> None:
    proc = run(["dvc", "repro", *([target] if target else [])], repo)
    # the killed stage runs again, or DVC restores its outputs from the run-cache
    redone = (f"Running stage '{stage}'", f"Stage '{stage}' is cached - skipping run")
    assert any(text in proc.stdout for text in redone), proc.stdout
    assert lock_outs(repo) == reference
    assert leftover_temps(repo) == []
    status = run(["dvc", "status", *([target] if target else [])], repo).stdout
    assert "up to date" in status, status


def test_kill_during_train(fault_repo, reference, tmp_path):
    trigger = kill_during(fault_repo, "train@hedonism", tmp_path / "log", temp_in=(TEMPS,))
    assert trigger == "temporary output present"
    rerun_matches(fault_repo, "train@hedonism", TARGET, reference)


def test_kill_during_judge(fault_repo, reference, tmp_path):
    import shutil

    import yaml

    # an empty judge cache, so that the forced run judges every answer again as the reference run did
    cache = yaml.safe_load((fault_repo / "params.yaml").read_text())["judge"]["cache_dir"]
    shutil.rmtree(cache, ignore_errors=True)
    kill_during(fault_repo, TARGET, tmp_path / "log", delay=mid_stage(fault_repo, "judge-hedonism"))
    rerun_matches(fault_repo, TARGET, TARGET, reference)


def test_kill_during_generate(fault_repo, reference, tmp_path):
    kill_during(fault_repo, "generate@hedonism", tmp_path / "log", delay=mid_stage(fault_repo, "generate-hedonism"))
    rerun_matches(fault_repo, "generate@hedonism", TARGET, reference)


def test_kill_during_report(fault_repo, full_reference, tmp_path):
    trigger = kill_during(
        fault_repo, "report", tmp_path / "log", temp_in=(TEMPS,), delay=mid_stage(fault_repo, "report")
    )
    assert trigger
    rerun_matches(fault_repo, "report", None, full_reference)


def test_two_repros_at_once(fault_repo, reference, tmp_path):
    """The first run retrains the adapter (tens of seconds, far longer than the second run's start-up), so
    the second reaches the stage while the first still holds it, whichever kill test ran before."""
    stage = "train@hedonism"
    before = lock_outs(fault_repo)  # every stage a previous test ran: the concurrent attempt must change none
    log = tmp_path / "first.log"
    first = start(["dvc", "repro", "-f", "-s", stage], fault_repo, log)
    try:
        wait_for_text(log, f"Running stage '{stage}'", first)
        second = run(["dvc", "repro", TARGET], fault_repo, check=False)
        said = second.stdout + second.stderr
        assert second.returncode != 0, said
        # DVC's lock message: the repo lock ("Unable to acquire lock"), or, since DVC releases it while a
        # stage command runs, the per-path rwlock on the stage the first run writes.
        assert "Unable to acquire lock" in said or "is busy, it is being blocked by" in said, said
        assert first.poll() is None, "the first run ended before the second reached its stage"
        assert first.wait(timeout=600) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            kill_group(first)
    assert lock_outs(fault_repo) == before
    assert lock_outs(fault_repo)[stage] == reference[stage]
    assert leftover_temps(fault_repo) == []
    assert "up to date" in run(["dvc", "status", TARGET], fault_repo).stdout
