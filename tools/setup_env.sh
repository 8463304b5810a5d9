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
#   bash tools/setup_env.sh --wheel-only   # only build (or find in the cache) the mmcv wheel for $PYTHON
#                                          # (default: the venv's python) and print its path
# Environment: MMKD_MMCV_CUDA (unset: auto; 0: CPU ops; 1: CUDA ops or fail), TORCH_CUDA_ARCH_LIST, PYTHON,
# MMKD_MMCV_WHEEL=PATH (install this prebuilt mmcv wheel, no compile), MMKD_MMCV_VERBOSE=1 (full compiler output),
# CUDA_HOME (default: the toolkit of `nvcc` on PATH, else /usr/local/cuda). Sourcing the script defines its
# functions only (tests/test_setup_env.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION=2.14.1
MMCV_VERSION=2.1.0

step() { CURRENT_STEP="$*"; echo "[setup_env] $(date +%H:%M:%S) $*"; }

fingerprint() {
  cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" "$ROOT/tools/misc/mmcv_build_plan.py" \
    | sha256sum | cut -d' ' -f1
}

# cuda_toolkit_env: export CUDA_HOME (when unset: the toolkit of `nvcc` on PATH if it has include/cuda_runtime.h,
# else /usr/local/cuda; a wrapper script such as /usr/local/bin/nvcc would make torch guess /usr/local) and add the
# CUDA headers of torch's pip packages (site-packages/nvidia/*/include: cusparse.h, cudnn.h, ...) to CPATH.
cuda_toolkit_env() {
  if [ -z "${CUDA_HOME:-}" ]; then
    local nvcc home=""
    nvcc="$(command -v nvcc || true)"
    [ -n "$nvcc" ] && home="$(dirname "$(dirname "$(readlink -f "$nvcc")")")"
    if [ -z "$home" ] || [ ! -f "$home/include/cuda_runtime.h" ]; then home=/usr/local/cuda; fi
    [ -x "$home/bin/nvcc" ] && export CUDA_HOME="$home"
  fi
  local inc
  inc="$("$PY" -c 'import glob, os, nvidia; print(":".join(sorted(
        d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "include")))))' 2>/dev/null || true)"
  if [ -n "$inc" ]; then export CPATH="$inc${CPATH:+:$CPATH}"; fi
}

# with_mmcv_build_env MODE ARCH_LIST CMD...: run CMD with the environment of mmcv's setup.py for MODE cpu or cuda.
# mmcv 2.1.0's setup.py compiles the CUDA extension when `torch.cuda.is_available() or FORCE_CUDA == '1'`, so
# FORCE_CUDA=0 alone still builds CUDA ops where a GPU is visible: the CPU build hides the GPUs as well.
with_mmcv_build_env() {
  local mode=$1 archs=$2
  shift 2
  if [ "$mode" = cuda ]; then
    env MMCV_WITH_OPS=1 FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=$archs" MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$@"
  else
    env MMCV_WITH_OPS=1 FORCE_CUDA=0 CUDA_VISIBLE_DEVICES= HIP_VISIBLE_DEVICES= ROCR_VISIBLE_DEVICES= \
        FORCE_MLU=0 FORCE_NPU=0 FORCE_MPS=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$@"
  fi
}

# build_mmcv_wheel MODE ARCH_LIST DEST: compile mmcv's ops (MODE cpu or cuda) into a wheel in DEST.
build_mmcv_wheel() {
  local mode=$1 archs=$2 dest=$3 work verbosity=-q
  [ "${MMKD_MMCV_VERBOSE:-0}" = 1 ] && verbosity=-v
  work="$(mktemp -d)"
  step "download mmcv==$MMCV_VERSION sdist"
  "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  local src="$work/mmcv-$MMCV_VERSION"
  # torch 2.14 headers need C++20; mmcv hard-codes -std=c++14/17 last on the compile line (cxx and nvcc).
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py" || { echo "could not patch mmcv's C++ standard flag" >&2; return 1; }
  step "compile mmcv==$MMCV_VERSION with $mode ops on $(nproc) cores (tens of minutes, once per machine)"
  mkdir -p "$dest"
  (cd "$src" && with_mmcv_build_env "$mode" "$archs" \
      "$PY" -m pip wheel --disable-pip-version-check "$verbosity" --no-build-isolation --no-deps . -w "$work/dist")
  mv "$work"/dist/mmcv-*.whl "$dest/"
  rm -rf "$work"
}

have_wheel() { ls "$1"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; }

# mmcv_wheel: set MMCV_WHEEL to $MMKD_MMCV_WHEEL, or to the cached wheel of this machine's plan, building it first
# (a failed CUDA build falls back to CPU ops unless MMKD_MMCV_CUDA=1).
mmcv_wheel() {
  if [ -n "${MMKD_MMCV_WHEEL:-}" ]; then
    [ -f "$MMKD_MMCV_WHEEL" ] || { echo "[setup_env] MMKD_MMCV_WHEEL=$MMKD_MMCV_WHEEL: no such file" >&2; return 1; }
    step "mmcv from the prebuilt wheel $MMKD_MMCV_WHEEL (MMKD_MMCV_WHEEL, no compile)"
    MMCV_WHEEL="$MMKD_MMCV_WHEEL"
    return 0
  fi
  cuda_toolkit_env
  step "plan the mmcv build (CPU ops, or CUDA ops for the visible GPUs)"
  local plan
  plan="$("$PY" "$ROOT/tools/misc/mmcv_build_plan.py")"
  eval "$plan"  # MMCV_MODE MMCV_ARCH_LIST MMCV_CACHE_KEY MMCV_CPU_CACHE_KEY MMCV_NOTE
  if [ -n "$MMCV_NOTE" ]; then echo "[setup_env] $MMCV_NOTE"; fi
  local wheels="${MMKD_CACHE_DIR:-$HOME/.cache/mmkd_ext/wheels}"
  mkdir -p "$wheels"
  local cache_dir="$wheels/$MMCV_CACHE_KEY" cached=1
  step "mmcv==$MMCV_VERSION with compiled $MMCV_MODE ops (wheel cache: $cache_dir)"
  if [ "$MMCV_MODE" = cuda ] && ! have_wheel "$cache_dir"; then
    if [ -f "$cache_dir/BUILD_FAILED" ] && [ "${MMKD_MMCV_CUDA:-auto}" != 1 ]; then
      echo "[setup_env] an earlier CUDA build of mmcv failed here ($cache_dir/BUILD_FAILED); using CPU ops." \
           "Retry with MMKD_MMCV_CUDA=1."
      MMCV_MODE=cpu
    # (errexit is off inside this condition: a failed build is detected by the missing wheel)
    elif cached=0; ! build_mmcv_wheel cuda "$MMCV_ARCH_LIST" "$cache_dir" 2>&1 | tee "$wheels/cuda_build.log" \
         || ! have_wheel "$cache_dir"; then
      [ "${MMKD_MMCV_CUDA:-auto}" = 1 ] && { echo "[setup_env] CUDA build of mmcv failed (MMKD_MMCV_CUDA=1);" \
        "log: $wheels/cuda_build.log" >&2; return 1; }
      mkdir -p "$cache_dir" && cp "$wheels/cuda_build.log" "$cache_dir/BUILD_FAILED"
      echo "[setup_env] WARNING: mmcv $MMCV_VERSION did not compile with CUDA here (log: $cache_dir/BUILD_FAILED;" \
           "upstream open-mmlab/mmcv#3329 reports such CUDA/torch pairs). Building CPU ops instead (GPUs hidden" \
           "from mmcv's setup.py): nms, RoIAlign and focal loss on GPU tensors then run torchvision's kernels" \
           "(mmkd_ext/compat/mmcv_ops.py)."
      MMCV_MODE=cpu
    fi
    if [ "$MMCV_MODE" = cpu ]; then cache_dir="$wheels/$MMCV_CPU_CACHE_KEY"; fi
  fi
  if ! have_wheel "$cache_dir"; then
    build_mmcv_wheel "$MMCV_MODE" "$MMCV_ARCH_LIST" "$cache_dir"
  elif [ "$cached" = 1 ]; then
    echo "[setup_env] using cached wheel $(ls "$cache_dir"/mmcv-"$MMCV_VERSION"-*.whl)"
  fi
  MMCV_WHEEL="$(ls "$cache_dir"/mmcv-"$MMCV_VERSION"-*.whl | head -1)"
}

# install_torchvision: torchvision of the release that matches the interpreter's torch, when it is missing
# (mmkd_ext's fallback kernels for mmcv without CUDA ops are torchvision's). --no-deps: never replace the torch.
install_torchvision() {
  "$PY" -c 'import torchvision' 2>/dev/null && return 0
  local tv
  tv="$("$PY" "$ROOT/tools/misc/mmcv_build_plan.py" --torchvision)"
  step "install torchvision==$tv (matches $("$PY" -c 'import torch; print(torch.__version__)'); for a CUDA build" \
       "of torch other than PyPI's, set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu<XY>)"
  "${PIP[@]}" --no-deps "torchvision==$tv"
}

[[ "${BASH_SOURCE[0]}" == "$0" ]] || return 0  # sourced (tests): functions only

MODE=venv
case "${1:-}" in
  --byo) MODE=byo ;;
  --wheel-only) MODE=wheel ;;
  "") ;;
  *) echo "usage: bash tools/setup_env.sh [--byo | --wheel-only]" >&2; exit 2 ;;
esac
VENV="${MMKD_VENV:-$ROOT/.venv}"
STAMP="$VENV/.mmkd_ext_env"
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "[setup_env] FAILED at step: ${CURRENT_STEP:-start} (exit $rc)" >&2; fi' EXIT

if [ "$MODE" = wheel ]; then
  PY="${PYTHON:-$VENV/bin/python}"
  exec 3>&1 1>&2  # stdout: the wheel's path only
  mmcv_wheel
  echo "$MMCV_WHEEL" >&3
  exit 0
elif [ "$MODE" = byo ]; then
  PY="$(command -v "${PYTHON:-python}" || { [ -z "${PYTHON:-}" ] && command -v python3; } || true)"
  [ -n "$PY" ] || { echo "[setup_env] no ${PYTHON:-python} (nor python3) on PATH; activate your environment" \
    "(or set PYTHON)" >&2; exit 1; }
  step "bring-your-own environment: $PY"
  "$PY" -c 'import torch' 2>/dev/null || { echo "[setup_env] $PY cannot import torch; activate the environment \
with your PyTorch first (or set PYTHON)" >&2; exit 1; }
  PIP=("$PY" -m pip install --disable-pip-version-check -q)
  step "install build requirements into it (setuptools<81 for pkg_resources, wheel, ninja)"
  "${PIP[@]}" -r "$ROOT/requirements/build.txt"
  install_torchvision
else
  PYTHON="${PYTHON:-python3.11}"
  command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && [ -x "$VENV/bin/python" ] \
     && [ -z "${MMKD_MMCV_WHEEL:-}" ] && [ "${MMKD_MMCV_CUDA:-auto}" != 1 ]; then  # explicit mmcv requests apply
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

mmcv_wheel
"${PIP[@]}" --no-deps --force-reinstall "$MMCV_WHEEL"
# mmcv's own run-time requirements (pip skipped them with --no-deps)
"${PIP[@]}" addict mmengine==0.10.7 numpy packaging Pillow pyyaml yapf opencv-python

if [ "$MODE" = byo ]; then
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
[ "$MODE" = byo ] || fingerprint > "$STAMP"
step "done"
