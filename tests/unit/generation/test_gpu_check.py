"""bench/gpu_check: the GPU throughput check runs end to end on CPU with --tiny (same code paths)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_gpu_check_tiny_runs_on_cpu_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [str(REPO / "bench" / "gpu_check.sh"), "--tiny", "--device", "cpu", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["tiny"] is True and result["train"]["params"] > 0
    assert result["train"]["tokens_per_second"] > 0 and result["train"]["mfu"] is None  # no peak known on CPU
    assert set(result["generate"]) == {"eager_bs1", "eager_bs4"} and min(result["generate"].values()) > 0
    mixed = result["mixed"]
    assert mixed["adapters"] == 3 and mixed["mixed_adapters_tokens_per_second"] > 0 and mixed["mixed_over_single"] > 0
    assert "train LoRA" in proc.stdout and "mixed 3 adapters" in proc.stdout
    # fp32 on CPU: the gathered layout computes what peft's mixed batch computes
    assert mixed["gathered_tokens_equal_peft"] == 1.0 and mixed["gathered_logits_max_abs_diff"] < 1e-4
    assert result["pipeline"]["train"]["tokens_per_second"] > 0 and result["pipeline"]["generate_tokens_per_second"] > 0
    assert result["errors"] == {}


def test_gpu_check_without_gpu_or_tiny_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(REPO / "bench" / "gpu_check.sh"), "--device", "cpu", "--out", ""],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and proc.stderr.strip().count("\n") == 0


def test_gpu_check_unknown_section_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(REPO / "bench" / "gpu_check.sh"), "--tiny", "--device", "cpu", "--only", "train,bogus", "--out", ""],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "bogus" in proc.stderr and proc.stderr.strip().count("\n") == 0
