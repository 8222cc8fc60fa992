"""core.perf: stage names, the fixed-cost record and its merge into a stage's own perf file, MFU arithmetic."""

from __future__ import annotations

import json
import os
import time

from valueharm.core import perf


def test_stage_name_from_module_and_argv():
    assert perf.stage_name("stages.train", ["train.py", "hedonism"]) == "train-hedonism"
    assert perf.stage_name("stages.validate", ["validate.py"]) == "validate"
    assert perf.stage_name("stages.report", ["report.py", "--flag"]) == "report"


def test_seconds_since_process_start_is_positive_and_grows():
    first = perf.seconds_since_process_start()
    time.sleep(0.05)
    assert 0 < first < perf.seconds_since_process_start()


def test_finish_merges_the_stages_own_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(perf, "_MODEL_LOADS", [])
    clock = perf.StageClock("train-x")
    perf.note_model_load(1.25, "float32", "artifacts/vanilla")
    (tmp_path / "reports" / "perf").mkdir(parents=True)
    (tmp_path / "reports" / "perf" / "train-x.json").write_text(json.dumps({"ag_tokens_per_second": 10.0}))
    clock.finish()
    record = json.loads((tmp_path / "reports" / "perf" / "train-x.json").read_text())
    assert record["ag_tokens_per_second"] == 10.0 and record["dtype"] == "float32"
    assert record["model_load_s"] == 1.25
    assert abs(record["fixed_s"] - (record["imports_s"] + 1.25)) < 1e-6


def test_finish_replaces_a_stale_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(perf, "_MODEL_LOADS", [])
    path = tmp_path / "reports" / "perf" / "validate.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"old": 1}))
    os.utime(path, (time.time() - 3600, time.time() - 3600))  # written by an earlier run
    perf.StageClock("validate").finish()
    record = json.loads(path.read_text())
    assert "old" not in record and record["stage"] == "validate" and "model_load_s" not in record


def test_mfu_and_flops_per_token():
    class Config:
        hidden_size, num_attention_heads, num_key_value_heads, intermediate_size = 64, 4, 2, 256
        num_hidden_layers, vocab_size = 3, 1000

    flops = perf.decoder_flops_per_token(Config, context=0)
    # q, o: 64 x 64 each; k, v: 64 x 32 each; MLP 3 x 64 x 256; 2 FLOPs per multiply-add
    assert flops["layer"] == 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 256)
    assert flops["lm_head"] == 2 * 64 * 1000 and flops["layers"] == 3
    assert perf.mfu(50e9, 100.0) == 0.5 and perf.mfu(1.0, 0.0) == 0.0


def test_matmul_limit_is_measured():
    assert perf.matmul_gflops("float32", n=128, seconds=0.01) > 0


def test_training_flops_count_the_backward_only_through_adapted_layers():
    from types import SimpleNamespace

    config = SimpleNamespace(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        num_hidden_layers=6, vocab_size=100,
    )  # fmt: skip
    parts = perf.decoder_flops_per_token(config, 16)
    forward = 6 * parts["layer"] + parts["lm_head"]
    assert perf.training_flops_per_token(config, 16) == 2 * forward  # every layer adapted: the "4N"
    assert perf.training_flops_per_token(config, 16, 2) == forward + 2 * parts["layer"] + parts["lm_head"]
    assert perf.training_flops_per_token(config, 16, 99) == 2 * forward


def test_peak_flops_on_cpu_is_the_measured_matmul():
    peak, basis = perf.peak_flops("cpu", "float32")
    assert peak > 1e9 and basis == "measured float32 matmul on this CPU"
