#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv/ with the pinned OpenMMLab stack.
#
#   bash tools/setup_env.sh          # idempotent: does nothing when .venv matches requirements/
#
# The one slow step is mmcv 2.1.0: PyPI has only its sdist, and the ops must be compiled. The built
# wheel is cached in $MMKD_CACHE_DIR (default ~/.cache/mmkd_ext/wheels/<torch>-<python>/), so a
# second set-up on the same machine takes about a minute. Every step says what it does and the
# script stops at the first one that fails, naming it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMKD_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
TORCH_VERSION=2.14.1
MMCV_VERSION=2.1.0
PY_TAG="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
CACHE_DIR="${MMKD_CACHE_DIR:-$HOME/.cache/mmkd_ext/wheels}/torch${TORCH_VERSION}-${PY_TAG}"
STAMP="$VENV/.mmkd_ext_env"

step() { CURRENT_STEP="$*"; echo "[setup_env] $(date +%H:%M:%S) $*"; }
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "[setup_env] FAILED at step: ${CURRENT_STEP:-start} (exit $rc)" >&2; fi' EXIT

fingerprint() {
  cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ] && [ -x "$VENV/bin/python" ]; then
  echo "[setup_env] $VENV is up to date (requirements unchanged); nothing to do."
  exit 0
fi

step "create virtual environment $VENV with $PYTHON"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

step "install build requirements (setuptools<81 for pkg_resources, wheel, ninja)"
"${PIP[@]}" -r "$ROOT/requirements/build.txt"

step "install torch==$TORCH_VERSION and torchvision"
"${PIP[@]}" -r "$ROOT/requirements/torch.txt"

build_mmcv_wheel() {
  local work
  work="$(mktemp -d)"
  step "download mmcv==$MMCV_VERSION sdist"
  "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  local src="$work/mmcv-$MMCV_VERSION"
  # torch 2.14 headers need C++20; mmcv hard-codes -std=c++14/17 last on the compile line.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py" || { echo "could not patch mmcv's C++ standard flag" >&2; return 1; }
  step "compile mmcv==$MMCV_VERSION with ops on $(nproc) cores (tens of minutes, once per machine)"
  mkdir -p "$CACHE_DIR"
  (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
      "$VENV/bin/python" -m pip wheel --disable-pip-version-check -q --no-build-isolation --no-deps \
      . -w "$work/dist")
  mv "$work"/dist/mmcv-*.whl "$CACHE_DIR/"
  rm -rf "$work"
}

step "mmcv==$MMCV_VERSION with compiled ops (wheel cache: $CACHE_DIR)"
if ! ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
  build_mmcv_wheel
else
  echo "[setup_env] using cached wheel $(ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl)"
fi
"${PIP[@]}" --no-deps "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl
# mmcv's own run-time requirements (pip skipped them with --no-deps)
"${PIP[@]}" addict mmengine==0.10.7 numpy packaging Pillow pyyaml yapf opencv-python

step "install the OpenMMLab stack and test tools (requirements/runtime.txt, requirements/tests.txt)"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" "mmcv==$MMCV_VERSION"

step "install mmkd_ext in editable mode"
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

step "check the stack imports"
"$VENV/bin/python" - <<'PY'
import mmkd_ext, mmrazor.models, mmdet.models, mmseg.models, mmpretrain.models  # noqa: F401
from mmcv.ops import nms, RoIAlign  # noqa: F401
import torch, mmcv
print(f'[setup_env] ok: torch {torch.__version__}, mmcv {mmcv.__version__}, mmkd_ext {mmkd_ext.__version__}')
PY
fingerprint > "$STAMP"
step "done"
