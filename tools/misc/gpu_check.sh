#!/usr/bin/env bash
# The GPU check in one command: on one GPU, one config per method x task (with and without AMP), the FKD label /
# KD-Zero search / AMD pipeline tools and `dist_train.sh CONFIG 1`, a few iterations each on the built-in demo
# data; prints a table (check, it/s, peak GPU memory, wall time, ok / FAIL / skipped and why) and writes it to
# work_dirs/gpu_check/gpu_check.md, then the wall time of the whole command, set-up included.
#   bash tools/misc/gpu_check.sh [--mmcv-wheel PATH] [--only SUBSTRING] [--iters N] [--no-amp] [--budget-s S] [--list]
# Interpreter: $PYTHON, else .venv/bin/python, else `python`, else `python3`. When it lacks the OpenMMLab stack (a
# machine with CUDA PyTorch but not our venv), the stack is installed first with `tools/setup_env.sh --byo`: into it
# when it is a venv / conda environment, else (a system Python, PEP 668 or not) into a new .venv created from it with
# --system-site-packages (its torch stays visible); torchvision is added when absent. mmcv is compiled against that
# torch (tens of minutes on few cores) unless `--mmcv-wheel PATH` gives a prebuilt one (tools/misc/build_mmcv_cuda.sh).
# Without internet pip needs the other wheels too: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path/to/wheels. GPU_CHECK_SETUP=0
# refuses to install anything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
START=$SECONDS
MMCV_WHEEL=""
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mmcv-wheel) [ $# -ge 2 ] || { echo "[gpu_check] --mmcv-wheel needs a PATH" >&2; exit 2; }
                  MMCV_WHEEL="$(readlink -f "$2")"; shift 2 ;;
    --mmcv-wheel=*) MMCV_WHEEL="$(readlink -f "${1#*=}")"; shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -n "$MMCV_WHEEL" ] && [ ! -f "$MMCV_WHEEL" ]; then
  echo "[gpu_check] --mmcv-wheel: no file $MMCV_WHEEL" >&2
  exit 2
fi

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY="$ROOT/.venv/bin/python"
else PY="$(command -v python || command -v python3 || true)"
fi
[ -n "$PY" ] || { echo "[gpu_check] no python or python3 on PATH: activate the environment with PyTorch" \
                       "(or set PYTHON)" >&2; exit 3; }
elapsed() { local s=$(( SECONDS - $1 )); echo "$(( s / 60 )) min $(( s % 60 )) s"; }

if [[ " ${ARGS[*]} " != *" --list "* ]]; then
  "$PY" tools/misc/gpu_check.py --probe || exit 3  # no torch / no GPU: says why and that every check is skipped
fi
if ! PYTHONPATH="$ROOT" "$PY" -c 'import mmkd_ext, mmdet, mmseg, mmpretrain' 2>/dev/null; then
  if [ "${GPU_CHECK_SETUP:-1}" = 0 ]; then
    echo "[gpu_check] $PY lacks the OpenMMLab stack and GPU_CHECK_SETUP=0; run bash tools/setup_env.sh --byo" >&2
    exit 3
  fi
  KIND="$("$PY" -c 'import os, sys, sysconfig
managed = os.path.isfile(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
env = sys.prefix != sys.base_prefix or os.path.isdir(os.path.join(sys.prefix, "conda-meta"))
print("env" if env else "system-managed" if managed else "system")')"
  if [ "$KIND" != env ]; then  # never pip into a system Python: a venv on top of it keeps its torch
    VENV="$ROOT/.venv"
    echo "[gpu_check] $PY is a system Python ($KIND): creating $VENV from it with --system-site-packages"
    "$PY" -m venv --system-site-packages "$VENV" || { echo "[gpu_check] could not create $VENV with $PY -m venv" \
      "(Debian/Ubuntu: apt install python3-venv); or activate a venv / conda environment with PyTorch and rerun" >&2
      exit 3; }
    PY="$VENV/bin/python"
  fi
  echo "[gpu_check] $PY lacks the OpenMMLab stack: installing it (tools/setup_env.sh --byo;" \
       "${MMCV_WHEEL:+mmcv from $MMCV_WHEEL}${MMCV_WHEEL:-mmcv compiled once, tens of minutes})"
  PYTHON="$PY" MMKD_MMCV_WHEEL="$MMCV_WHEEL" bash tools/setup_env.sh --byo
  echo "[gpu_check] set-up took $(elapsed "$START")"
elif [ -n "$MMCV_WHEEL" ]; then
  echo "[gpu_check] $PY has the OpenMMLab stack already; --mmcv-wheel ignored"
fi
rc=0
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" tools/misc/gpu_check.py "${ARGS[@]}" || rc=$?
echo "[gpu_check] wall time of the whole command: $(elapsed "$START") (set-up and every check included; exit $rc)"
exit $rc
