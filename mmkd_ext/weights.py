"""Strict weight loading: a teacher checkpoint or ``load_from`` that does not fit the model is an error.

MMEngine's ``load_checkpoint`` defaults to ``strict=False``: a wrong file (say the checkpoint of a whole
distillation run, whose keys start with ``architecture.`` / ``teacher.``) logs a warning and the model
trains on with random weights. Here every teacher checkpoint (MMRazor's ``SingleTeacherDistill`` and its
subclasses, ``AMDDistill``, ``ACMKDDistill``, FKD label generation) and every ``load_from`` / ``--resume``
of a Runner is checked first: missing keys, unexpected keys or wrong shapes raise
:class:`CheckpointMismatchError` (a ``RuntimeError``, like MMEngine's own ``strict=True`` error) naming the
file, a few keys and the likely cause. Partial loads stay possible, explicitly:
``model.teacher_ckpt_strict=False`` (teacher), ``load_from_strict=False`` (top level of a config) or
``strict=False`` in an FKD ``teachers`` entry.
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

DEFAULT_REVISE_KEYS = ((r'^module\.', ''), )
# prefixes of a whole distillation run's state dict (MMRazor algorithms: student = architecture)
RUN_PREFIXES = ('architecture.', 'teacher.')
SHOWN_KEYS = 5


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes do not match the model it is loaded into."""


def checkpoint_state_dict(checkpoint: Any, revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
                          ) -> Dict[str, Any]:
    """The state dict of a loaded checkpoint with ``revise_keys`` applied (as MMEngine does).

    Args:
        checkpoint: what ``torch.load`` returned: a dict with ``state_dict`` or the state dict itself.
        revise_keys: ``(pattern, replacement)`` regex pairs applied to every key in order.

    Returns:
        ``{key: tensor}``.
    """
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    out = dict(state_dict)
    for pattern, repl in revise_keys:
        out = {re.sub(pattern, repl, k): v for k, v in out.items()}
    return out


def key_mismatch(model: nn.Module, state_dict: Dict[str, Any]) -> Tuple[List[str], List[str], List[str]]:
    """What a strict load of ``state_dict`` into ``model`` would complain about.

    BatchNorm ``num_batches_tracked`` counters are ignored, as MMEngine's ``load_state_dict`` does.

    Args:
        model: the model.
        state_dict: ``{key: tensor}`` to load.

    Returns:
        (missing keys, unexpected keys, ``'key: file shape vs model shape'`` lines), each sorted.
    """
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state_dict and not k.endswith('num_batches_tracked'))
    unexpected = sorted(k for k in state_dict if k not in own and not k.endswith('num_batches_tracked'))
    shapes = sorted(f'{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model'
                    for k, v in state_dict.items()
                    if k in own and hasattr(v, 'shape') and tuple(v.shape) != tuple(own[k].shape))
    return missing, unexpected, shapes


def _few(keys: List[str]) -> str:
    more = f' and {len(keys) - SHOWN_KEYS} more' if len(keys) > SHOWN_KEYS else ''
    return ', '.join(keys[:SHOWN_KEYS]) + more


def mismatch_advice(unexpected: List[str]) -> str:
    """The likely cause of a mismatch, judged from the file's surplus keys."""
    prefixes = sorted({p for p in RUN_PREFIXES for k in unexpected if k.startswith(p)})
    if prefixes:
        return (f"the file looks like the checkpoint of a whole distillation run (its keys start with "
                f"{' / '.join(repr(p) for p in prefixes)}), not of one model: extract the part you need first, "
                "e.g. `python tools/misc/extract_weights.py FILE OUT.pth --prefix architecture.` (the student) "
                "or `--prefix teacher.` (the teacher of that run)")
    return 'the file was saved for another model: check that the config that wrote it builds this model'


def mismatch_summary(model: nn.Module, state_dict: Dict[str, Any]) -> str:
    """``'N missing keys (...); M unexpected keys (...); K shape mismatches (...)'`` of a strict load ('' if none).

    Args:
        model: the model.
        state_dict: ``{key: tensor}`` to load.

    Returns:
        The summary, a few keys of each kind.
    """
    missing, unexpected, shapes = key_mismatch(model, state_dict)
    parts = [f'{len(missing)} missing keys ({_few(missing)})' if missing else '',
             f'{len(unexpected)} unexpected keys ({_few(unexpected)})' if unexpected else '',
             f'{len(shapes)} shape mismatches ({_few(shapes)})' if shapes else '']
    return '; '.join(p for p in parts if p)


def fitting_models(state_dict: Dict[str, Any], builders: Dict[str, Callable[[], nn.Module]]) -> List[str]:
    """The names of ``builders`` whose model ``state_dict`` fits exactly (keys and shapes).

    The models are built on the meta device (no memory, no initialisation), so trying a dozen costs milliseconds.

    Args:
        state_dict: ``{key: tensor}``.
        builders: name -> function building the model.

    Returns:
        The names that fit, in the order of ``builders``.
    """
    return [name for name, build in builders.items() if not mismatch_summary(build_on_meta(build), state_dict)]


def build_on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` on the meta device (shapes only), or on the CPU when the model reads a value while it is built."""
    try:
        with torch.device('meta'):
            return build()
    except (RuntimeError, NotImplementedError):  # e.g. ``.item()`` of a meta tensor (a drop-path rate schedule)
        return build()


def check_state_dict(model: nn.Module, state_dict: Dict[str, Any], filename: str, role: str, option: str) -> None:
    """Raise :class:`CheckpointMismatchError` if ``state_dict`` does not fit ``model`` exactly.

    Args:
        model: the model the weights are for.
        state_dict: the (revised) state dict of the file.
        filename: the file, for the message.
        role: what the file is (``'teacher_ckpt'``, ``'load_from'``), for the message.
        option: the setting that allows a partial load, for the message.
    """
    missing, unexpected, shapes = key_mismatch(model, state_dict)
    if not (missing or unexpected or shapes):
        return
    raise CheckpointMismatchError(
        f'{role} {filename!r} does not match {type(model).__name__}: '
        f'{mismatch_summary(model, state_dict)}. Likely cause: {mismatch_advice(unexpected)}. '
        f'To load it partially anyway (the weights it lacks stay as initialised), set {option}.')


def extract_prefix(checkpoint: Any, prefix: str) -> Dict[str, Any]:
    """The tensors of ``checkpoint`` under ``prefix`` (e.g. ``'architecture.'``), the prefix removed.

    Args:
        checkpoint: a loaded checkpoint (dict with ``state_dict`` or the state dict itself).
        prefix: key prefix of the sub-model; a trailing ``.`` is added if missing.

    Returns:
        ``{key without prefix: tensor}``.

    Raises:
        KeyError: no key starts with ``prefix`` (names the top-level prefixes the file has).
    """
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    state_dict = checkpoint_state_dict(checkpoint)
    out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not out:
        tops = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
        raise KeyError(f'no key of the checkpoint starts with {prefix!r}; its keys start with {tops}')
    return out


def load_weights(model: nn.Module, filename: str, strict: bool = True, role: str = 'teacher_ckpt',
                 option: str = 'model.teacher_ckpt_strict=False',
                 revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS) -> dict:
    """Load ``filename`` into ``model``; with ``strict`` every key and shape must match.

    Args:
        model: the model.
        filename: checkpoint path or URL (anything MMEngine's ``CheckpointLoader`` reads).
        strict: raise :class:`CheckpointMismatchError` on any mismatch; False loads what fits and lets
            MMEngine warn about the rest.
        role, option: for the error message (see :func:`check_state_dict`).
        revise_keys: key rewrites applied before loading.

    Returns:
        The loaded checkpoint (dict).
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
    checkpoint = _load_checkpoint(filename, map_location='cpu')
    if strict:
        check_state_dict(model, checkpoint_state_dict(checkpoint, revise_keys), filename, role, option)
    return _load_checkpoint_to_model(model, checkpoint, strict=False, revise_keys=list(revise_keys))


# ------------------------------------------------------------------------------------------------
# Installed on MMRazor's SingleTeacherDistill and MMEngine's Runner by :func:`apply`
# ------------------------------------------------------------------------------------------------
def _strict_teacher_init(cls: type) -> None:
    """Give ``cls.__init__`` a ``teacher_ckpt_strict=True`` argument and load ``teacher_ckpt`` strictly."""
    original = cls.__init__
    if getattr(original, '_mmkd_checked', False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, teacher_ckpt_strict: bool = True, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        ckpt = bound.arguments.get('teacher_ckpt')
        bound.arguments['teacher_ckpt'] = None
        original(*bound.args, **bound.kwargs)
        self.teacher_ckpt_strict = teacher_ckpt_strict
        if ckpt:  # as upstream: initialise first, so the runner's init_weights keeps the loaded weights
            self.teacher.init_weights()
            load_weights(self.teacher, ckpt, teacher_ckpt_strict)

    __init__._mmkd_checked = True
    cls.__init__ = __init__


class _KeyCheckHook:
    """Runs last in ``after_load_checkpoint`` (after hooks that edit the checkpoint) and checks its keys."""

    def __init__(self, model: nn.Module, filename: str, revise_keys) -> None:
        self.model, self.filename, self.revise_keys = model, filename, revise_keys

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_state_dict(self.model, checkpoint_state_dict(checkpoint, self.revise_keys), self.filename,
                         'load_from', 'load_from_strict=False at the top level of the config')


def _strict_runner_load(runner_cls: type) -> None:
    """``Runner.load_checkpoint`` (``load_from``, ``--resume``, ``tools/test.py``) checks keys unless the
    config sets ``load_from_strict=False`` (or the caller asks for ``strict=True`` itself)."""
    original = runner_cls.load_checkpoint
    if getattr(original, '_mmkd_checked', False):
        return

    @functools.wraps(original)
    def load_checkpoint(self, filename: str, map_location: Any = 'cpu', strict: bool = False,
                        revise_keys: Optional[list] = None):
        revise_keys = [(r'^module.', '')] if revise_keys is None else revise_keys
        if strict or not self.cfg.get('load_from_strict', True):
            return original(self, filename, map_location, strict, revise_keys)
        from mmengine.model import is_model_wrapper
        model = self.model.module if is_model_wrapper(self.model) else self.model
        check = _KeyCheckHook(model, filename, revise_keys)
        self._hooks.append(check)
        try:
            return original(self, filename, map_location, strict, revise_keys)
        finally:
            self._hooks.remove(check)

    load_checkpoint._mmkd_checked = True
    runner_cls.load_checkpoint = load_checkpoint


def apply() -> None:
    """Strict teacher loading on ``SingleTeacherDistill``; strict ``load_from`` on MMEngine's Runner."""
    from mmengine.runner import Runner
    from mmrazor.models.algorithms import SingleTeacherDistill
    _strict_teacher_init(SingleTeacherDistill)
    _strict_runner_load(Runner)
