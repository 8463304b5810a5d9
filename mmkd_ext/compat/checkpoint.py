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
* names the file when it cannot be read at all (empty, truncated, a text file instead of the weights): torch's
  own error (``PytorchStreamReader failed reading zip archive``, ``EOFError``, ``KeyError: 101``) becomes a
  subclass of the same type (:class:`UnreadableCheckpointError`) with the file, what it looks like and what to do;
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
from typing import Any, Callable, Dict, List, Set, Tuple, Union

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


class UnreadableCheckpointError(Exception):
    """A checkpoint file torch could not read (empty, truncated, not written by ``torch.save``).

    Raised as one of the subclasses below, each also an instance of the exception torch raised (``RuntimeError``
    for a damaged zip archive, ``EOFError`` for an empty file, ``UnpicklingError`` / ``KeyError`` for other bytes),
    so code catching torch's error still catches it; the message keeps torch's text.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''  # KeyError would print the repr of the message


class UnreadableCheckpointRuntimeError(UnreadableCheckpointError, RuntimeError):
    """A damaged zip archive (``PytorchStreamReader failed reading zip archive``)."""


class UnreadableCheckpointEOFError(UnreadableCheckpointError, EOFError):
    """An empty or cut file (``EOFError: Ran out of input``)."""


class UnreadableCheckpointUnpicklingError(UnreadableCheckpointError, pickle.UnpicklingError):
    """Bytes that are not a pickle (``invalid load key``)."""


class UnreadableCheckpointKeyError(UnreadableCheckpointError, KeyError):
    """A legacy-format read that met an unknown record (``KeyError: 101``)."""


class UnreadableCheckpointValueError(UnreadableCheckpointError, ValueError):
    """torch refused the file's contents with a ``ValueError``."""


class UnreadableCheckpointOSError(UnreadableCheckpointError, OSError):
    """The file could not be read (a directory, no permission, an I/O error)."""


UNREADABLE_ERRORS: Dict[type, type] = {
    RuntimeError: UnreadableCheckpointRuntimeError, EOFError: UnreadableCheckpointEOFError,
    pickle.UnpicklingError: UnreadableCheckpointUnpicklingError, KeyError: UnreadableCheckpointKeyError,
    ValueError: UnreadableCheckpointValueError, OSError: UnreadableCheckpointOSError}
ZIP_MAGIC = b'PK\x03\x04'  # torch.save's default (zip) format
SHOWN_BYTES = 60


def describe_file(filename: str) -> str:
    """What ``filename`` looks like, for an error: its size and whether it is empty, a zip archive or text.

    Args:
        filename: an existing file.

    Returns:
        e.g. ``'0 bytes: an empty file'`` or ``"41 bytes: a text file starting with 'version https://git-lfs'"``.
    """
    try:
        size = os.path.getsize(filename)
        with open(filename, 'rb') as f:
            head = f.read(SHOWN_BYTES)
    except OSError as err:
        return f'not readable: {err}'
    if size == 0:
        return '0 bytes: an empty file'
    if head.startswith(ZIP_MAGIC):
        return f'{size} bytes: a zip archive (torch.save) that is truncated or damaged'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        return (f'{size} bytes: a text file starting with {text.splitlines()[0][:SHOWN_BYTES]!r} (an HTML error '
                'page or a Git LFS pointer instead of the weights?)')
    return f'{size} bytes: not a file written by torch.save, or a damaged one'


def unreadable(filename: str, err: BaseException) -> BaseException:
    """The error to raise for a checkpoint torch could not read: names the file and what to do.

    Args:
        filename: the checkpoint.
        err: torch's error.

    Returns:
        An :class:`UnreadableCheckpointError` subclass of ``err``'s type; for a type outside
        :data:`UNREADABLE_ERRORS`, ``err`` itself with the same text added as a note.
    """
    upstream = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    said = f'{type(err).__name__}: {upstream}' if upstream else type(err).__name__
    message = (f'checkpoint file {filename!r} (absolute path: {osp.abspath(filename)}) cannot be read: '
               f'{describe_file(filename)}. torch.load said: {said}. Write it again '
               '(train again, copy or download it completely) or point the setting that names it (teacher_ckpt, '
               'load_from, --resume, a tool\'s CHECKPOINT argument) at a complete checkpoint.')
    cls = next((sub for base, sub in UNREADABLE_ERRORS.items() if isinstance(err, base)), None)
    if cls is None:
        err.add_note(message)
        return err
    return cls(message)


def _torch_load(filename: str, map_location: Any, weights_only: bool) -> Any:
    """``torch.load`` that names the file in an error of an unreadable file (see :func:`unreadable`)."""
    try:
        return torch.load(filename, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as err:
        if weights_only and is_allow_list_refusal(err):
            raise
        raise unreadable(filename, err) from err
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, IndexError, AttributeError) as err:
        raise unreadable(filename, err) from err


def is_allow_list_refusal(err: pickle.UnpicklingError) -> bool:
    """Whether a weights-only ``UnpicklingError`` is the allow-list refusing a global (not a damaged file)."""
    text = str(err)
    return 'GLOBAL' in text or 'getattr' in text or 'Unsupported global' in text


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
        UnreadableCheckpointError: the file is empty, truncated or not a checkpoint (a subclass of torch's error).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint file {filename!r} does not exist (absolute path: {osp.abspath(filename)}). '
            'If it is a teacher_ckpt, train the teacher first with tools/train.py on the '
            "teacher's config, or point teacher_ckpt at an existing file.")
    if is_trusted(filename):
        return _torch_load(filename, map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return _torch_load(filename, map_location, weights_only=True)
    except UnreadableCheckpointError:
        raise
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
