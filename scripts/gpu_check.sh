#!/usr/bin/env bash
# The GPU check in one command: bash scripts/gpu_check.sh OUTDIR [--no-benchmark] [...]
# On a CUDA machine (about 6-8 minutes): the CUDA-marked tests (host syncs per step in bf16/fp16 with channels_last,
# compile, a one-process NCCL group through the DDP path, fp16 resume, tiled SR memory at 2K/4K, test.py on images
# of several sizes, the data path's CUDA random stream) and the benchmark's GPU rows; JSON and markdown reports
# naming the device go to OUTDIR; the exit code is 1 when a check failed. Without CUDA: one line, exit 0.
# Python: $PYTHON, else ./.venv/bin/python, else python3 (a GPU image's own PyTorch). See scripts/gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
exec "$py" scripts/gpu_check.py "$@"
