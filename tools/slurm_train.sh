#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU (OpenMMLab style). Usage:
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py args]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS, PYTHON, MASTER_PORT (see slurm_run.sh).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" "$(dirname "$0")/train.py" "$3" --work-dir="$4" "${@:5}"
