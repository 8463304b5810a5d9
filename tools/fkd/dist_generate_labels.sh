#!/usr/bin/env bash
# FKD label generation with N processes (torchrun); rank r writes shards r, r+N, r+2N, ... of the store,
# the last process to finish marks the store complete. The result equals a single-process run.
#   bash tools/fkd/dist_generate_labels.sh LABEL_CONFIG N [extra args of tools/fkd/generate_labels.py]
# Environment: NNODES (1), NODE_RANK (0), PORT (29510), MASTER_ADDR (127.0.0.1), PYTHON (python).
set -euo pipefail
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29510}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/../..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --nproc_per_node="$NPROC" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    "$(dirname "$0")/generate_labels.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
