"""pytest-benchmark: `valueharm bench --quick` (matmul limits, train/generate/score tokens/s and MFU for
float32 and auto, useful tokens/s per batching mode). Figures go to extra_info, never asserted."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from valueharm.cli.bench import bench, run_bench


@pytest.mark.slow
def test_bench_quick(benchmark, base_model_dir):
    report = benchmark.pedantic(lambda: run_bench(base_model_dir, quick=True), rounds=1, iterations=1)
    benchmark.extra_info.update(
        matmul_gflops=report["matmul_gflops"],
        auto_dtype=report["auto_dtype"],
        auto_over_float32=report["auto_over_float32"],
        train_batching=report["train_batching"],
        flags=report["machine"]["flags"],
    )
    fp32 = report["throughput"]["float32"]
    assert set(report["matmul_gflops"]) == {"float32", "bfloat16"}
    assert all(fp32[part]["tokens_per_second"] > 0 and 0 < fp32[part]["mfu"] for part in ("train", "generate", "score"))
    assert set(report["train_batching"]) == {"padded", "packed", "bucketed", "shared_prefix"}
    assert (
        report["train_batching"]["packed"]["padding_fraction"] <= report["train_batching"]["padded"]["padding_fraction"]
    )
    assert report["auto_dtype"] in {"float32", "bfloat16"}


def test_bench_without_a_model_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(bench, [])
    assert result.exit_code != 0 and "--model" in str(result.exception)
    assert not result.output.lstrip().startswith("{")  # no JSON on failure
