#!/usr/bin/env bash
# Run any mmkd_ext tool on a Slurm cluster, one task per GPU (OpenMMLab style). Usage:
#   bash tools/slurm_run.sh PARTITION JOB_NAME TOOL.py [tool args]      # adds --launcher slurm
# e.g. GPUS=16 bash tools/slurm_run.sh gpu amd tools/amd/run.py configs/amd/amd_vit-base_vit-base-p15_16xb8-100e_cifar100.py
#      GPUS=8 bash tools/slurm_run.sh gpu fkd tools/fkd/generate_labels.py configs/fkd/labels_efficientnet-l2-475_m200-ms5_in1k.py
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options,
# e.g. "--time=2-00:00:00 --qos=high"), PYTHON (python), MASTER_PORT (default: 20000 + SLURM_JOB_ID % 10000,
# so two jobs whose first node is the same use different ports).
# Each task reads SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (mmkd_ext/compat/distributed.py) and uses
# GPU SLURM_LOCALID of its node; all tasks must see the repository, configs, data and work dir at the same paths.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash tools/slurm_run.sh PARTITION JOB_NAME TOOL.py [tool args]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
TOOL=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
if ! command -v srun > /dev/null; then
  echo "tools/slurm_run.sh: srun is not on PATH ($PATH): run this on a Slurm login node (or load the Slurm module);" \
    "without Slurm use tools/dist_train.sh / tools/dist_test.sh (torchrun) or python tools/<tool>.py" >&2
  exit 2
fi
if [ "$GPUS" -lt "$GPUS_PER_NODE" ]; then GPUS_PER_NODE=$GPUS; fi

# shellcheck disable=SC2086  # SRUN_ARGS is a list of options
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOL" "${@:4}" --launcher slurm
