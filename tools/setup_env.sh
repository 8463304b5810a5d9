#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv/ with the pinned OpenMMLab stack.
#
#   bash tools/setup_env.sh          # idempotent: does nothing when .venv matches requirements/
#   bash tools/setup_env.sh --byo    # bring your own environment: build mmcv against the active python's
#                                    # torch (e.g. a cluster's CUDA PyTorch), then pip install -e . into it
#
# The one slow step is mmcv 2.1.0: PyPI has only its sdist, and the ops must be compiled. With a GPU
# and a matching nvcc the ops are built with CUDA for the visible GPUs (TORCH_CUDA_ARCH_LIST); without
# them, CPU ops (tools/misc/mmcv_build_plan.py decides and says why). The built wheel is cached in
# $MMKD_CACHE_DIR (default ~/.cache/mmkd_ext/wheels/<key>/, key torch<version>-<python> for CPU ops,
# plus -cu<cuda>-sm<archs> for CUDA ops), so a second set-up on the same machine takes about a minute.
# Every step says what it does and the script stops at the first one that fails, naming it.
# Environment: MMKD_MMCV_CUDA (unset: auto; 0: CPU ops; 1: CUDA ops or fail), TORCH_CUDA_ARCH_LIST, PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BYO=0
case "${1:-}" in
  --byo) BYO=1 ;;
  "") ;;
  *) echo "usage: bash tools/setup_env.sh [--byo]" >&2; exit 2 ;;
esac
VENV="${MMKD_VENV:-$ROOT/.venv}"
TORCH_VERSION=2.14.1
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmkd_ext_env"

step() { CURRENT_STEP="$*"; echo "[setup_env] $(date +%H:%M:%S) $*"; }
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "[setup_env] FAILED at step: ${CURRENT_STEP:-start} (exit $rc)" >&2; fi' EXIT

fingerprint() {
  cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" "$ROOT/tools/misc/mmcv_build_plan.py" \
    | sha256sum | cut -d' ' -f1
}

if [ "$BYO" = 1 ]; then
  PY="$(command -v "${PYTHON:-python}" || true)"
  [ -n "$PY" ] || { echo "[setup_env] no ${PYTHON:-python} on PATH; activate your environment (or set PYTHON)" >&2; exit 1; }
  step "bring-your-own environment: $PY"
  "$PY" -c 'import torch' 2>/dev/null || { echo "[setup_env] $PY cannot import torch; activate the environment \
with your PyTorch first (or set PYTHON)" >&2; exit 1; }
  PIP=("$PY" -m pip install --disable-pip-version-check -q)
  step "install build requirements into it (setuptools<81 for pkg_resources, wheel, ninja)"
  "${PIP[@]}" -r "$ROOT/requirements/build.txt"
else
  PYTHON="${PYTHON:-python3.11}"
  command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && [ -x "$VENV/bin/python" ]; then
    echo "[setup_env] $VENV is up to date (requirements unchanged); nothing to do."
    exit 0
  fi

  step "create virtual environment $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
  PY="$VENV/bin/python"
  PIP=("$PY" -m pip install --disable-pip-version-check -q)

  step "install build requirements (setuptools<81 for pkg_resources, wheel, ninja)"
  "${PIP[@]}" -r "$ROOT/requirements/build.txt"

  step "install torch==$TORCH_VERSION and torchvision"
  "${PIP[@]}" -r "$ROOT/requirements/torch.txt"
fi

step "plan the mmcv build (CPU ops, or CUDA ops for the visible GPUs)"
PLAN="$("$PY" "$ROOT/tools/misc/mmcv_build_plan.py")"
eval "$PLAN"  # MMCV_MODE MMCV_ARCH_LIST MMCV_CACHE_KEY MMCV_CPU_CACHE_KEY MMCV_NOTE
if [ -n "$MMCV_NOTE" ]; then echo "[setup_env] $MMCV_NOTE"; fi
WHEELS="${MMKD_CACHE_DIR:-$HOME/.cache/mmkd_ext/wheels}"
mkdir -p "$WHEELS"
CACHE_DIR="$WHEELS/$MMCV_CACHE_KEY"

# build_mmcv_wheel MODE ARCH_LIST DEST: compile mmcv's ops (MODE cpu or cuda) into a wheel in DEST.
build_mmcv_wheel() {
  local mode=$1 archs=$2 dest=$3 work
  work="$(mktemp -d)"
  step "download mmcv==$MMCV_VERSION sdist"
  "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  local src="$work/mmcv-$MMCV_VERSION"
  # torch 2.14 headers need C++20; mmcv hard-codes -std=c++14/17 last on the compile line (cxx and nvcc).
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py" || { echo "could not patch mmcv's C++ standard flag" >&2; return 1; }
  local cuda_env=(FORCE_CUDA=0)
  [ "$mode" = cuda ] && cuda_env=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$archs")
  step "compile mmcv==$MMCV_VERSION with $mode ops on $(nproc) cores (tens of minutes, once per machine)"
  mkdir -p "$dest"
  (cd "$src" && env MMCV_WITH_OPS=1 "${cuda_env[@]}" MAX_JOBS="$(nproc)" \
      "$PY" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
      . -w "$work/dist")
  mv "$work"/dist/mmcv-*.whl "$dest/"
  rm -rf "$work"
}

have_wheel() { ls "$1"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; }

step "mmcv==$MMCV_VERSION with compiled $MMCV_MODE ops (wheel cache: $CACHE_DIR)"
if [ "$MMCV_MODE" = cuda ] && ! have_wheel "$CACHE_DIR"; then
  if [ -f "$CACHE_DIR/BUILD_FAILED" ] && [ "${MMKD_MMCV_CUDA:-auto}" != 1 ]; then
    echo "[setup_env] an earlier CUDA build of mmcv failed here ($CACHE_DIR/BUILD_FAILED); using CPU ops." \
         "Retry with MMKD_MMCV_CUDA=1."
    MMCV_MODE=cpu
  # (errexit is off inside this condition: a failed build is detected by the missing wheel)
  elif ! build_mmcv_wheel cuda "$MMCV_ARCH_LIST" "$CACHE_DIR" 2>&1 | tee "$WHEELS/cuda_build.log" \
       || ! have_wheel "$CACHE_DIR"; then
    [ "${MMKD_MMCV_CUDA:-auto}" = 1 ] && { echo "[setup_env] CUDA build of mmcv failed (MMKD_MMCV_CUDA=1);" \
      "log: $WHEELS/cuda_build.log" >&2; exit 1; }
    mkdir -p "$CACHE_DIR" && cp "$WHEELS/cuda_build.log" "$CACHE_DIR/BUILD_FAILED"
    echo "[setup_env] WARNING: mmcv $MMCV_VERSION did not compile with CUDA here (log: $CACHE_DIR/BUILD_FAILED;" \
         "upstream open-mmlab/mmcv#3329 reports such CUDA/torch pairs). Building CPU ops instead: nms, RoIAlign" \
         "and focal loss on GPU tensors then run torchvision's kernels (mmkd_ext/compat/mmcv_ops.py)."
    MMCV_MODE=cpu
  fi
  if [ "$MMCV_MODE" = cpu ]; then CACHE_DIR="$WHEELS/$MMCV_CPU_CACHE_KEY"; fi
fi
if ! have_wheel "$CACHE_DIR"; then
  build_mmcv_wheel "$MMCV_MODE" "$MMCV_ARCH_LIST" "$CACHE_DIR"
else
  echo "[setup_env] using cached wheel $(ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl)"
fi
"${PIP[@]}" --no-deps --force-reinstall "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl
# mmcv's own run-time requirements (pip skipped them with --no-deps)
"${PIP[@]}" addict mmengine==0.10.7 numpy packaging Pillow pyyaml yapf opencv-python

if [ "$BYO" = 1 ]; then
  step "install the OpenMMLab stack (requirements/runtime.txt) into $PY"
  "${PIP[@]}" -r "$ROOT/requirements/runtime.txt" "mmcv==$MMCV_VERSION"
else
  step "install the OpenMMLab stack and test tools (requirements/runtime.txt, requirements/tests.txt)"
  "${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/deploy.txt" "mmcv==$MMCV_VERSION"
fi

step "install mmkd_ext in editable mode"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

step "check the stack imports"
"$PY" - <<'PY'
import mmkd_ext, mmrazor.models, mmdet.models, mmseg.models, mmpretrain.models  # noqa: F401
from mmcv.ops import nms, RoIAlign  # noqa: F401
import torch, mmcv
from mmkd_ext.compat.mmcv_ops import ops_path
print(f'[setup_env] ok: torch {torch.__version__}, mmcv {mmcv.__version__}, mmkd_ext {mmkd_ext.__version__}')
print(f'[setup_env] detection ops: {ops_path()}')
PY
[ "$BYO" = 1 ] || fingerprint > "$STAMP"
step "done"
