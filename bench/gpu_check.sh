#!/usr/bin/env bash
# GPU check (bench/gpu_check.py): LoRA training tokens/s and MFU, hf generate tokens/s at batch 1 and
# 128 (eager; static cache + torch.compile), mixed-adapter generate tokens/s, on a randomly
# initialised Llama-shaped ~1.1B model. Under 8 minutes on one H100/H200-class GPU.
#   bench/gpu_check.sh            # on the GPU machine (pins GPU 0 unless CUDA_VISIBLE_DEVICES is set)
#   bench/gpu_check.sh --tiny     # CPU smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} TOKENIZERS_PARALLELISM=false
exec timeout "${GPU_CHECK_TIMEOUT_S:-480}" "$PY" bench/gpu_check.py "$@"
