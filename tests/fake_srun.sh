#!/usr/bin/env bash
# A test-only stand-in for srun (tests/test_launch.py): logs its arguments to $FAKE_SRUN_LOG, then (unless
# FAKE_SRUN_DRY=1) starts --ntasks copies of the command on this machine with SLURM_* set as srun would.
echo "$*" > "$FAKE_SRUN_LOG"
n=1
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    --ntasks=*) n=${1#*=} ;;
    -p) shift ;;
  esac
  shift
done
[ "${FAKE_SRUN_DRY:-0}" = 1 ] && exit 0
pids=()
for ((i = 0; i < n; i++)); do
  SLURM_PROCID=$i SLURM_NTASKS=$n SLURM_LOCALID=$i SLURM_NODELIST=localhost "$@" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
exit $rc
