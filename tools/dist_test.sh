#!/usr/bin/env bash
# Multi-process testing with torchrun. Usage:
#   bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [extra args of tools/test.py]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1).
# On GPUs each process drives one GPU (nccl); without a GPU the processes train on CPU (gloo).
# Python: $PYTHON, else the repository's .venv/bin/python when it exists (after `make env`), else `python`.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-$(p="$(dirname "$0")/../.venv/bin/python"; [ -x "$p" ] && echo "$p" || echo python)}  # the set-up venv by default

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
