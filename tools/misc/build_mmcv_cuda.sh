#!/usr/bin/env bash
# Compile mmcv 2.1.0 with CUDA ops (or reuse the cached wheel) for the interpreter's torch, and show the evidence.
#
#   TORCH_CUDA_ARCH_LIST=9.0 bash tools/misc/build_mmcv_cuda.sh    # sm_90 (H100/H200); '8.0;9.0' adds A100
#   bash tools/misc/build_mmcv_cuda.sh --inspect WHEEL             # only the evidence of a built wheel
#
# No GPU is needed (a login node with the CUDA toolkit is enough): tools/setup_env.sh --wheel-only with
# MMKD_MMCV_CUDA=1 (CUDA ops or an error, never a silent CPU build) and the full compiler output. The wheel goes to
# $MMKD_CACHE_DIR/torch<ver>-<py>-cu<cuda>-sm<archs>/ (default ~/.cache/mmkd_ext/wheels/); a second run finds it.
# The evidence, without a GPU: the extension's .nv_fatbin section (readelf) and the architectures of the cubins in
# it, the CUDA kernels of nms / roi_align / sigmoid_focal_loss (nm), and the CUDA version mmcv.ops reports.
# Install the wheel with `MMKD_MMCV_WHEEL=PATH make env` or `bash tools/misc/gpu_check.sh --mmcv-wheel PATH`.
# Environment: PYTHON (default .venv/bin/python), TORCH_CUDA_ARCH_LIST (default: the visible GPUs), MAX_JOBS,
# CUDA_HOME, MMKD_CACHE_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

# inspect WHEEL: print the sm_XX evidence of the wheel's mmcv/_ext*.so.
inspect() {
  local wheel=$1 tmp so
  tmp="$(mktemp -d)"
  "$PY" -m zipfile -e "$wheel" "$tmp"
  so="$(ls "$tmp"/mmcv/_ext*.so)"
  echo "[build_mmcv_cuda] $(basename "$so"): $(du -h "$so" | cut -f1)"
  echo "[build_mmcv_cuda] readelf -SW: $(readelf -SW "$so" | grep -E '\.nv_fatbin|__nv_module_id' | tr -s ' ' || true)"
  objcopy -O binary --only-section=.nv_fatbin "$so" "$tmp/fatbin"
  "$PY" - "$tmp/fatbin" <<'PY'
import collections, struct, sys
data, pos, found = open(sys.argv[1], 'rb').read(), 0, collections.Counter()
while pos + 16 <= len(data):  # fatbin containers: magic 0xBA55ED50, u16 version, u16 header size, u64 body size
    magic, _, hsize, size = struct.unpack_from('<IHHQ', data, pos)
    if magic != 0xBA55ED50:
        pos += 8
        continue
    entry, end = pos + hsize, pos + hsize + size
    while entry + 32 <= end:  # entries: u16 kind (1 PTX, 2 cubin), u16, u32 header size, u64 size, ..., u32 arch @28
        kind, _, ehsize, esize = struct.unpack_from('<HHIQ', data, entry)
        found[('PTX' if kind == 1 else 'cubin', struct.unpack_from('<I', data, entry + 28)[0])] += 1
        entry += ehsize + esize
    pos = end
print('[build_mmcv_cuda] .nv_fatbin entries:', ', '.join(f'{n} {k} sm_{a}' for (k, a), n in sorted(found.items())))
PY
  echo "[build_mmcv_cuda] CUDA kernels (nm -C, device stubs of __global__ functions):"
  local kernel
  for kernel in Z8nms_cuda roi_align_forward_cuda_kernel sigmoid_focal_loss_forward_cuda_kernel; do
    nm -C "$so" | grep -E " [tT] __device_stub__.*$kernel" | sed 's/^/    /' | head -2 || true
  done
  echo "[build_mmcv_cuda] CUDA launchers exported (nm -DC): $(nm -DC "$so" | grep -cE 'CUDAKernelLauncher|_cuda\(')"
  nm -DC "$so" | grep -E '(NMS|ROIAlignForward|SigmoidFocalLossForward)CUDAKernelLauncher' | sed 's/^/    /' || true
  (cd "$tmp" && "$PY" -c 'from mmcv.ops import get_compiler_version as g, get_compiling_cuda_version as c
print(f"[build_mmcv_cuda] mmcv.ops: compiled with CUDA {c()}, {g()}")') \
    || echo "[build_mmcv_cuda] mmcv.ops not importable here"
  rm -rf "$tmp"
}

if [ "${1:-}" = --inspect ]; then inspect "$2"; exit 0; fi
start=$SECONDS
echo "[build_mmcv_cuda] $(date -u +%FT%TZ) start: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
     "TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-<the visible GPUs>}"
wheel="$(MMKD_MMCV_CUDA=1 MMKD_MMCV_VERBOSE=1 PYTHON="$PY" bash "$ROOT/tools/setup_env.sh" --wheel-only | tail -1)"
took=$(( SECONDS - start ))
echo "[build_mmcv_cuda] $(date -u +%FT%TZ) $wheel after $(( took / 60 )) min $(( took % 60 )) s" \
     "(load average now $(cut -d' ' -f1-3 /proc/loadavg))"
inspect "$wheel"
