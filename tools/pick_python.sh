#!/usr/bin/env bash
# Sourced by tools/dist_train.sh and tools/dist_test.sh: sets PYTHON to the interpreter that runs the tools.
# Order: $PYTHON; the activated environment ($VIRTUAL_ENV/bin/python, else $CONDA_PREFIX/bin/python unless it is
# conda's auto-activated `base`); the repository's .venv/bin/python (after `make env`), by its absolute path;
# else `python` on PATH. Also sets MMKD_REPO to the repository root (absolute).
MMKD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    PYTHON=$VIRTUAL_ENV/bin/python
  elif [ -n "${CONDA_PREFIX:-}" ] && [ "${CONDA_DEFAULT_ENV:-}" != base ] && [ -x "$CONDA_PREFIX/bin/python" ]; then
    PYTHON=$CONDA_PREFIX/bin/python
  elif [ -x "$MMKD_REPO/.venv/bin/python" ]; then
    PYTHON=$MMKD_REPO/.venv/bin/python
  else
    PYTHON=python
  fi
fi
