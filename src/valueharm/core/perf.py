"""Performance bookkeeping: a stage's fixed cost, the machine's matmul limit, model FLOP utilisation.

`StageClock` measures what a stage pays before it does its own work (interpreter start and
imports, then model load) and writes it to reports/perf/<stage>.json, merged with the stage's
own figures. Timings vary between runs, so they never go into metrics that DVC compares.
`matmul_gflops` is the measured limit that MFU figures are quoted against (what this CPU
reaches on one large square matmul in a dtype, with torch's threads as configured).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from valueharm.core.atomic import write_json

PERF_DIR = Path("reports/perf")
_IMPORTED_AT = time.perf_counter()


def seconds_since_process_start() -> float:
    """Wall time since this process started (Linux /proc), else since this module was imported."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED_AT


_MODEL_LOADS: list[dict[str, Any]] = []


def note_model_load(seconds: float, dtype: str, path: str) -> None:
    """Called by `models.base.load_model`: the stage's record then shows what loading cost and in which dtype."""
    _MODEL_LOADS.append({"seconds": round(seconds, 3), "dtype": dtype, "path": path})


def stage_name(module: str, argv: list[str]) -> str:
    """`stages.train` run as `python -m stages.train hedonism` -> `train-hedonism` (the perf file's stem)."""
    if module == "__main__":  # python -m stages.X: the module's real name is on its spec
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else Path(argv[0]).stem if argv else "stage"
    name = module.rsplit(".", 1)[-1]
    return f"{name}-{argv[1]}" if len(argv) > 1 and not argv[1].startswith("-") else name


class StageClock:
    """Fixed-cost timer for one stage run: `imports_s` at creation, then named marks (e.g. model_load)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.marks: dict[str, float] = {"imports_s": round(seconds_since_process_start(), 3)}
        self._last = time.perf_counter()
        self._start = self._last
        self._wall_start = time.time() - 1.0  # mtime granularity

    def mark(self, name: str) -> float:
        """Seconds since the previous mark, recorded as `<name>_s`."""
        now = time.perf_counter()
        self.marks[f"{name}_s"] = round(now - self._last, 3)
        self._last = now
        return self.marks[f"{name}_s"]

    def record(self, **extra: Any) -> dict[str, Any]:
        marks = dict(self.marks)
        if _MODEL_LOADS and "model_load_s" not in marks:
            marks["model_load_s"] = round(sum(m["seconds"] for m in _MODEL_LOADS), 3)
            marks["dtype"] = _MODEL_LOADS[0]["dtype"]
            marks["model_loads"] = list(_MODEL_LOADS)
        fixed = marks["imports_s"] + marks.get("model_load_s", 0.0)
        total = marks["imports_s"] + time.perf_counter() - self._start
        return {"stage": self.stage, **marks, "fixed_s": round(fixed, 3), "total_s": round(total, 3), **extra}

    def finish(self) -> None:
        """After a successful stage: merge the fixed-cost record into reports/perf/<stage>.json.

        A perf file the stage itself wrote in this run keeps its keys (tokens/s ...); an older one
        is replaced. Best effort: a full disk here must not fail a stage whose outputs are written.
        """
        path = PERF_DIR / f"{self.stage}.json"
        own: dict[str, Any] = {}
        try:
            if path.exists() and path.stat().st_mtime >= self._wall_start:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                own = loaded if isinstance(loaded, dict) else {}
            write_json(path, {**self.record(), **own})
        except (OSError, ValueError) as exc:
            print(f"warning: could not write {path} ({exc.__class__.__name__})", file=sys.stderr)

    def write(self, extra: dict[str, Any] | None = None, path: str | Path | None = None) -> dict[str, Any]:
        """Write reports/perf/<stage>.json: the fixed-cost record plus the stage's own perf figures."""
        record = self.record(**(extra or {}))
        write_json(path or PERF_DIR / f"{self.stage}.json", record)
        return record


def matmul_gflops(dtype_name: str = "float32", n: int = 1024, seconds: float = 0.5) -> float:
    """Measured GFLOP/s of an n x n matmul in `dtype_name` (best of repeated runs for about `seconds`)."""
    import torch

    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.mm(a, b)  # warm-up (oneDNN picks its kernel)
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return 2 * n**3 / best / 1e9


def decoder_flops_per_token(config, context: int) -> dict[str, float]:
    """Forward FLOPs per token of a decoder-only transformer: 2 x matmul parameters, plus attention scores.

    Returns the per-layer and LM-head parts separately, so training (backprop through the top
    layers only) and scoring (LM head on few positions) can be counted honestly.
    """
    h = config.hidden_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads) or heads
    head_dim = getattr(config, "head_dim", None) or h // heads
    inter = config.intermediate_size
    per_layer_params = h * heads * head_dim * 2 + h * kv * head_dim * 2 + 3 * h * inter
    attention = 2 * 2 * heads * head_dim * context  # QK^T and AV against `context` keys
    return {
        "layer": 2.0 * per_layer_params + attention,
        "layers": int(config.num_hidden_layers),
        "lm_head": 2.0 * h * config.vocab_size,
    }


def mfu(flops_per_second: float, limit_gflops: float) -> float:
    """Model FLOP utilisation: achieved model FLOP/s as a fraction of the measured matmul limit."""
    return flops_per_second / (limit_gflops * 1e9) if limit_gflops > 0 else 0.0


def training_flops_per_token(config, context: int, trained_layers: int | None = None) -> float:
    """Model FLOPs per token of one LoRA training step: the forward pass through every layer and the LM
    head, plus the backward pass's input gradients through the LM head and the `trained_layers` top
    layers (None: all). Frozen weights get no weight gradients and nothing below the lowest adapted
    layer is backpropagated; LoRA's own rank-r products are negligible and not counted. With every
    layer adapted this is 2 x forward, the "4N" of LoRA training (6N for full fine-tuning)."""
    parts = decoder_flops_per_token(config, context)
    layers = parts["layers"] if trained_layers is None else min(int(trained_layers), parts["layers"])
    forward = parts["layers"] * parts["layer"] + parts["lm_head"]
    return forward + layers * parts["layer"] + parts["lm_head"]


# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, by device name.
CUDA_PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
}


def peak_flops(device: str, dtype_name: str) -> tuple[float | None, str]:
    """(peak FLOP/s that MFU is quoted against, where it comes from) for `device` computing in `dtype_name`.

    CUDA: the data-sheet dense bf16/fp16 peak of a known device (None for other GPUs or fp32).
    CPU: this machine's measured `matmul_gflops` in that dtype (half a second, once per process)."""
    if device.startswith("cuda"):
        import torch

        name = torch.cuda.get_device_name()
        if dtype_name in ("bfloat16", "float16"):
            for key, tflops in CUDA_PEAK_BF16_TFLOPS.items():
                if key in name:
                    return tflops * 1e12, f"{name} data-sheet dense {dtype_name} {tflops:g} TFLOP/s"
        return None, f"no known peak for {name} in {dtype_name}"
    return _cpu_peak(dtype_name) * 1e9, f"measured {dtype_name} matmul on this CPU"


_CPU_PEAKS: dict[str, float] = {}


def _cpu_peak(dtype_name: str) -> float:
    if dtype_name not in _CPU_PEAKS:
        _CPU_PEAKS[dtype_name] = matmul_gflops(dtype_name)
    return _CPU_PEAKS[dtype_name]
