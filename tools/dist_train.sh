#!/usr/bin/env bash
# Multi-process training with torchrun. Usage:
#   bash tools/dist_train.sh CONFIG NUM_PROCS [extra args of tools/train.py]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1).
# On GPUs each process drives one GPU (nccl); without a GPU the processes train on CPU (gloo).
# Python: $PYTHON, else the activated environment (VIRTUAL_ENV, CONDA_PREFIX but not conda's base), else the
# repository's .venv/bin/python when it exists (after `make env`), else `python` (tools/pick_python.sh).
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# shellcheck source=tools/pick_python.sh
source "$(dirname "$0")/pick_python.sh"  # sets PYTHON and MMKD_REPO (absolute)

PYTHONPATH="$MMKD_REPO":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$MMKD_REPO/tools/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
