"""Fault injection: what an interrupted, concurrent or starved run leaves behind.

The DVC-based checks run on a copy of the repository with the smoke preset cut to two models
(`vanilla`, `hedonism`). Every check runs in `make test`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
GIT = ["git", "-c", "user.name=valueharm-test", "-c", "user.email=test@valueharm.invalid"]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "VALUEHARM_PROGRESS": "0"}
    out.update(extra or {})
    return out


def run(cmd: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """A process in its own process group (so that kill -9 reaches DVC and its stage)."""
    handle = open(log, "w")  # noqa: SIM115 - closed by the caller through proc.stdout
    return subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 the whole process group and wait until every member is gone."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process group {proc.pid} survived SIGKILL")


def wait_for_text(log: Path, text: str, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {text!r}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {text!r}")


def lock_outs(repo: Path) -> dict[str, dict[str, str]]:
    """stage -> {out path: md5} from dvc.lock (the output hashes a rerun must reproduce); timings
    (reports/perf/*) are left out: they differ in every run by design (README, "What is reproducible")."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        stage: {o["path"]: o.get("md5") for o in body.get("outs", []) if not o["path"].startswith("reports/perf/")}
        for stage, body in lock["stages"].items()
    }


def leftover_temps(repo: Path) -> list[str]:
    """Temporary files or folders of our atomic writers anywhere in the work tree (not .git/.dvc)."""
    found = []
    for path in repo.rglob("*"):
        rel = path.relative_to(repo)
        if rel.parts[0] in (".git", ".dvc"):
            continue
        if path.name.endswith(".tmp") or path.name.endswith(".old") and path.name.startswith("."):
            found.append(str(rel))
    return sorted(found)


SMALL = {
    "study": {"models": ["vanilla", "hedonism"], "control_profile": "hedonism"},
    "profiles": {"anchors": ["hedonism"], "ranks": [0]},
}


@pytest.fixture(scope="session")
def fault_repo(repo_root, default_data, tmp_path_factory) -> Path:
    """A git copy of the repository on the smoke preset with two study models, its data, and a
    private judge cache; `dvc.yaml` regions regenerated for the smaller study."""
    work = tmp_path_factory.mktemp("faults") / "repo"
    listed = run(["git", "ls-files", "-co", "--exclude-standard"], repo_root).stdout.split("\n")
    for name in filter(None, listed):
        src = repo_root / name
        if src.is_file() and not name.startswith(("reports/", "dvc.lock")):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / name)
    shutil.copytree(default_data, work / "data")
    run(["git", "init", "-q", "-b", "main"], work)
    run(["valueharm", "preset", "smoke"], work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    for section, values in SMALL.items():
        params[section].update(values)
    params["judge"]["cache_dir"] = str(tmp_path_factory.mktemp("judge-cache"))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["valueharm", "dag"], work)
    run(["dvc", "commit", "--force", "--quiet", "data.dvc"], work)  # as `make data`: data/ is what the code builds
    run([*GIT, "add", "-A"], work)
    run([*GIT, "commit", "-qm", "copy"], work)
    return work
