#!/usr/bin/env bash
# The GPU check in one command: on one GPU, one config per method x task (with and without AMP), the FKD label /
# KD-Zero search / AMD pipeline tools and `dist_train.sh CONFIG 1`, a few iterations each on the built-in demo
# data; prints a table (check, it/s, peak GPU memory, wall time, ok / FAIL / skipped and why) and writes it to
# work_dirs/gpu_check/gpu_check.md. About 5-8 minutes on one datacenter GPU.
#   bash tools/misc/gpu_check.sh [--only SUBSTRING] [--iters N] [--no-amp] [--budget-s S] [--list]
# Interpreter: $PYTHON, else .venv/bin/python, else `python`. When it lacks the OpenMMLab stack (a machine with CUDA
# PyTorch but not our venv), the stack is installed into it first with `tools/setup_env.sh --byo` (builds mmcv
# against that torch; needs PyPI or PIP_FIND_LINKS/PIP_NO_INDEX=1 with a wheel folder); GPU_CHECK_SETUP=0 refuses.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python
fi
if [[ " $* " != *" --list "* ]]; then
  "$PY" tools/misc/gpu_check.py --probe || exit 3  # no torch / no GPU: says why and that every check is skipped
fi
if ! PYTHONPATH="$ROOT" "$PY" -c 'import mmkd_ext, mmdet, mmseg, mmpretrain' 2>/dev/null; then
  if [ "${GPU_CHECK_SETUP:-1}" = 0 ]; then
    echo "[gpu_check] $PY lacks the OpenMMLab stack and GPU_CHECK_SETUP=0; run bash tools/setup_env.sh --byo" >&2
    exit 3
  fi
  echo "[gpu_check] $PY lacks the OpenMMLab stack: installing it (tools/setup_env.sh --byo, builds mmcv once)"
  PYTHON="$PY" bash tools/setup_env.sh --byo
fi
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" tools/misc/gpu_check.py "$@"
