"""Load MMEngine checkpoints on torch>=2.6 with ``weights_only`` kept on.

torch 2.6 made ``torch.load(weights_only=True)`` the default. MMEngine 0.10.7 calls
``torch.load(filename, map_location)`` for every local checkpoint (``load_from``, ``--resume``,
``teacher_ckpt``, ``tools/test.py``), and the checkpoints its own Runner saves hold a few
non-tensor globals, so every one of those fails with ``UnpicklingError: Weights only load
failed``.

This module replaces MMEngine's local-file checkpoint scheme with one that

* keeps ``weights_only=True`` and allow-lists, only for the duration of that load, exactly the
  globals MMEngine's checkpoints need (:data:`SAFE_GLOBALS`): ``HistoryBuffer`` (message hub
  state), numpy arrays, dtypes and scalars (data, no code);
* replaces ``builtins.getattr`` (which the pickle uses to fetch ``HistoryBuffer.min`` & co.) with
  :func:`restricted_getattr`, which only returns registered ``HistoryBuffer`` statistics methods.
  A real ``getattr`` would let a crafted checkpoint reach ``os.system`` through any allowed
  object, so it is never allow-listed;
* refuses anything else with an error naming the file, the offending global and the opt-in;
* fully unpickles (``weights_only=False``) only files the user trusts explicitly, by name:
  ``MMKD_EXT_TRUSTED_CHECKPOINTS=/path/a.pth:/path/b.pth`` (``os.pathsep``-separated) or
  :func:`trust_checkpoint`. Full unpickling executes code from the file: do it only for
  checkpoints you made or fully trust.
"""
from __future__ import annotations

import importlib
import os
import os.path as osp
import pickle
from typing import Any, Callable, List, Set, Tuple, Union

import numpy as np
import torch

TRUSTED_ENV = 'MMKD_EXT_TRUSTED_CHECKPOINTS'
# HistoryBuffer's built-in statistics (registered per instance in its __init__), plus any registered later
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_trusted_files: Set[str] = set()


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """numpy arrays, dtypes and scalars, under both numpy 1 and numpy 2 module names."""
    found: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    try:
        multiarray = importlib.import_module('numpy._core.multiarray')  # numpy 2
    except ImportError:
        multiarray = importlib.import_module('numpy.core.multiarray')  # numpy 1
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        found.append((multiarray._reconstruct, f'{module}._reconstruct'))
        found.append((multiarray.scalar, f'{module}.scalar'))
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found.extend(getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType'))
    return found


def restricted_getattr(obj: Any, name: str) -> Any:
    """The only ``getattr`` a checkpoint may call: ``HistoryBuffer.<statistics method>``.

    Args:
        obj: the object the pickle asks an attribute of; must be ``HistoryBuffer``.
        name: attribute name; must be a statistics method registered on ``HistoryBuffer``.

    Returns:
        The statistics method (a plain function).
    """
    from mmengine.logging import HistoryBuffer
    allowed = set(HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only HistoryBuffer statistics methods '
        f'({sorted(allowed)}) are allowed under weights_only loading')


def safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """Every global allowed while loading an MMEngine checkpoint with ``weights_only=True``."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (restricted_getattr, 'builtins.getattr')] + _numpy_globals()


def trust_checkpoint(path: str) -> None:
    """Allow a full (code-executing) unpickle of ``path``; see the module docstring."""
    _trusted_files.add(osp.realpath(osp.expanduser(path)))


def is_trusted(path: str) -> bool:
    """Whether ``path`` was named by :func:`trust_checkpoint` or ``MMKD_EXT_TRUSTED_CHECKPOINTS``."""
    real = osp.realpath(osp.expanduser(path))
    from_env = {osp.realpath(osp.expanduser(p)) for p in os.environ.get(TRUSTED_ENV, '').split(os.pathsep) if p}
    return real in _trusted_files or real in from_env


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint: weights-only with MMEngine's globals, full unpickle only if trusted.

    Args:
        filename: path of the checkpoint file.
        map_location: same as :func:`torch.load`.

    Returns:
        Whatever the file holds (usually a dict with ``state_dict`` and ``meta``).

    Raises:
        FileNotFoundError: the file does not exist (the message gives the absolute path).
        pickle.UnpicklingError: the file needs a global outside the allow-list and is not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint file {filename!r} does not exist (absolute path: {osp.abspath(filename)}). '
            'If it is a teacher_ckpt, train the teacher first with tools/train.py on the '
            "teacher's config, or point teacher_ckpt at an existing file.")
    if is_trusted(filename):
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = next((line for line in lines if 'GLOBAL' in line or 'getattr' in line), lines[0] if lines else '')
        raise pickle.UnpicklingError(
            f'refusing to fully unpickle checkpoint {filename!r}: it needs a global outside the '
            f'weights-only allow-list of mmkd_ext ({detail}). Full '
            'unpickling can execute code stored in the file. If you trust this file, opt in for it '
            f'by name: export {TRUSTED_ENV}={osp.abspath(filename)} (or call '
            'mmkd_ext.compat.checkpoint.trust_checkpoint(path)).') from err


def apply() -> List[str]:
    """Register :func:`load_checkpoint_file` as MMEngine's loader for local paths.

    Returns:
        What was replaced, for the compat report.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename: str, map_location: Any = None) -> Any:
        return load_checkpoint_file(filename, map_location)

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    return ['mmengine CheckpointLoader local scheme -> weights-only allow-list loader']
