"""Clear errors for the most common distillation-config mistakes.

MMRazor's own messages for these are cryptic (``AssertionError: "head.fcc" is not in the model.``
after a long traceback, or a broadcasting error deep inside a loss). :func:`apply` adds a check in
front of MMRazor's module recorders and of its pairwise (student, teacher) losses; mmkd_ext's own
losses call the same functions. It also makes teacher checkpoints and ``load_from`` load strictly
(:mod:`mmkd_ext.weights`) and ``save_best='auto'`` track the student, not the teacher.
"""
from __future__ import annotations

import difflib
import functools
import inspect
import logging
from typing import Any, Iterable, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from . import weights

# MMRazor losses whose forward(student, teacher) needs both inputs of the same shape.
PAIRWISE_LOSSES = ('KLDivergence', 'DKDLoss', 'ChannelWiseDivergence', 'CrossEntropyLoss', 'DISTLoss',
                   'KDSoftCELoss', 'L1Loss', 'L2Loss', 'MGDLoss')


def close_matches(name: str, candidates: Iterable[str], n: int = 5) -> List[str]:
    """The candidates most similar to ``name`` (difflib ratio), best first."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)


class ModuleNameError(KeyError, AssertionError):
    """A module name (recorder source, stage) that the model does not have.

    A ``KeyError`` for mmkd_ext's callers and an ``AssertionError`` as MMRazor's recorders raise it (its message
    ``'"<source>" is not in the model.'`` is kept at the start), so code written against either catches it.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''  # KeyError would print the repr of the message


def check_module_name(model: nn.Module, source: str, role: str = 'recorder source') -> None:
    """Raise :class:`ModuleNameError` naming the model and the closest module names if ``source`` is absent.

    Args:
        model: the model the name should be found in.
        source: dotted module name, e.g. ``'head.fc'``.
        role: what the name is, for the message.

    Raises:
        ModuleNameError: ``source`` is not a module of ``model`` (a ``KeyError`` and an ``AssertionError``).
    """
    names = [name for name, _ in model.named_modules() if name]
    if source in names or source == '':  # '': the model itself (e.g. MMRazor CRD records its inputs)
        return
    hint = close_matches(source, names)
    suggestion = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else (
        f'; its top-level modules are {[n for n in names if "." not in n]}')
    raise ModuleNameError(f'"{source}" is not in the model. {role} {source!r} is not a module of '
                          f'{type(model).__name__}{suggestion}')


def check_same_shape(loss_name: str, preds_S: torch.Tensor, preds_T: torch.Tensor) -> None:
    """Raise ``ValueError`` naming both shapes when student and teacher outputs differ.

    Args:
        loss_name: the loss, for the message.
        preds_S: student output, (N, C) logits or (N, C, H, W) features.
        preds_T: teacher output of the same kind.
    """
    if not (torch.is_tensor(preds_S) and torch.is_tensor(preds_T)) or preds_S.shape == preds_T.shape:
        return
    s, t = tuple(preds_S.shape), tuple(preds_T.shape)
    if preds_S.dim() == 2 and preds_T.dim() == 2:
        advice = (f'student has {s[1]} classes and teacher {t[1]}: set the same num_classes in both '
                  'heads (a logit loss compares class by class)')
    else:
        advice = ('add a connector in the distiller (e.g. connectors=dict(s_conn=dict('
                  f"type='ConvModuleConnector', in_channel={s[1]}, out_channel={t[1]}, ...)) and "
                  "connector='s_conn' on the loss input) so the student feature matches the teacher's")
    raise ValueError(f'{loss_name}: student input of shape {s} and teacher input of shape {t} differ; {advice}')


def differ_only_in_unit_dims(a: Any, b: Any) -> bool:
    """Whether tensors ``a`` and ``b`` have different shapes that agree once size-1 dimensions after the batch
    dimension are dropped ((N, C) and (N, C, 1, 1))."""
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape == b.shape or a.dim() == 0 or b.dim() == 0:
        return False
    return a.shape[0] == b.shape[0] and [d for d in a.shape[1:] if d != 1] == [d for d in b.shape[1:] if d != 1]


_WARNED: set = set()


def _warn_once(key: str, message: str) -> None:
    """Log ``message`` the first time ``key`` (a loss class) is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        print_log(message, logger='current', level=logging.WARNING)


def _checked_forward(loss_cls: type) -> None:
    original = loss_cls.forward
    if getattr(original, '_mmkd_checked', False):
        return

    signature = inspect.signature(original)
    student, teacher = list(signature.parameters)[1:3]  # preds_S/T, logits_S/T (DIST), s/t_feature (L1, L2)

    @functools.wraps(original)
    def forward(self, *args, **kwargs):
        bound = signature.bind_partial(self, *args, **kwargs)  # MMRazor calls with its mapping's names
        preds_S, preds_T = bound.arguments.get(student), bound.arguments.get(teacher)
        if differ_only_in_unit_dims(preds_S, preds_T):
            _warn_once(loss_cls.__name__,
                       f'{loss_cls.__name__}: the teacher input of shape {tuple(preds_T.shape)} is viewed as the '
                       f"student's {tuple(preds_S.shape)} (they differ only in size-1 dimensions, e.g. a pooled "
                       '(N, C, 1, 1) map against (N, C) features; broadcasting would pair every sample with every '
                       'other)')
            bound.arguments[teacher] = preds_T.reshape(preds_S.shape)
            return original(*bound.args, **bound.kwargs)
        check_same_shape(loss_cls.__name__, preds_S, preds_T)
        return original(self, *args, **kwargs)

    forward._mmkd_checked = True
    loss_cls.forward = forward


def _checked_prepare(recorder_cls: type) -> None:
    original = recorder_cls.prepare_from_model
    if getattr(original, '_mmkd_checked', False):
        return

    @functools.wraps(original)
    def prepare_from_model(self, model=None):
        if model is not None:
            check_module_name(model, self.source, f'{type(self).__name__} source')
        return original(self, model)

    prepare_from_model._mmkd_checked = True
    recorder_cls.prepare_from_model = prepare_from_model


def apply() -> None:
    """Install the checks on MMRazor's module recorders and pairwise losses, "best" checkpoints by the
    student's metric, and strict weight loading (:mod:`mmkd_ext.weights`) on teachers and ``load_from``
    (idempotent)."""
    from mmrazor.models import losses
    from mmrazor.models.task_modules.recorder import ModuleInputsRecorder, ModuleOutputsRecorder
    for recorder_cls in (ModuleOutputsRecorder, ModuleInputsRecorder):
        _checked_prepare(recorder_cls)
    for name in PAIRWISE_LOSSES:
        _checked_forward(getattr(losses, name))
    from mmengine.hooks import CheckpointHook
    _student_best(CheckpointHook)
    weights.apply()


def _paths_with_value(node: Any, value: Any, prefix: str = '') -> List[str]:
    """Dotted paths under ``node`` (dicts and lists) whose value equals ``value``."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(node))
    else:
        return []
    found = []
    for key, child in items:
        path = f'{prefix}{key}'
        if type(child) is type(value) and child == value:
            found.append(path)
        found.extend(_paths_with_value(child, value, path + '.'))
    return found


# top-level keys mmkd_ext reads that a config need not have (besides the Runner's own arguments)
DOCUMENTED_TOP_LEVEL_KEYS = ('load_from_strict', 'kd_zero_align_always')
# untyped dicts the Runner builds into a known class (their keys are that class's arguments)
IMPLICIT_TYPES = {'train_cfg': ('mmengine.runner.EpochBasedTrainLoop', 'mmengine.runner.IterBasedTrainLoop'),
                  'val_cfg': ('mmengine.runner.ValLoop', ), 'test_cfg': ('mmengine.runner.TestLoop', ),
                  'randomness': ('mmengine.runner.Runner.set_randomness', ),
                  'log_processor': ('mmengine.runner.LogProcessor', )}
CLOSE_NAME_RATIO = 0.85  # a new key this similar to an existing one is taken for a misspelling of it


class UnknownOptionKeyError(KeyError):
    """A ``--cfg-options`` key that names no setting of the config (a misspelling would add a new, unread key)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''  # KeyError would print the repr of the message


def _import_object(path: str) -> Any:
    module, _, name = path.rpartition('.')
    import importlib
    try:
        obj = importlib.import_module(module)
    except ImportError:  # a method: module.Class.method
        module, _, owner = module.rpartition('.')
        obj = getattr(importlib.import_module(module), owner)
    return getattr(obj, name)


def _registered_class(type_name: Any, scopes: List[str]) -> Any:
    """The class a config's ``type`` names (a class itself, or a name in any MMEngine registry), or None."""
    if not isinstance(type_name, str):
        return type_name if callable(type_name) else None
    from mmengine import registry as mm_registry
    roots = [r for r in vars(mm_registry).values() if isinstance(r, mm_registry.Registry)]
    for root in roots:
        registries = [root, *root.children.values()]
        registries += [grand for child in root.children.values() for grand in child.children.values()]
        ordered = sorted(registries, key=lambda reg: scopes.index(reg.scope) if reg.scope in scopes else len(scopes))
        for reg in ordered:
            if type_name.split('.')[-1] in reg.module_dict:
                return reg.module_dict[type_name.split('.')[-1]]
    return None


def accepted_arguments(target: Any) -> Tuple[set, bool]:
    """The keyword arguments ``target`` (a class or a function) accepts.

    A class's ``**kwargs`` are followed to its bases' ``__init__`` (mmkd_ext's wrappers of upstream ``__init__``
    count with their own arguments).

    Args:
        target: a class or a function.

    Returns:
        (names, open): ``open`` when some ``**kwargs`` are kept by the class itself (any name may be read).
    """
    inits = [klass.__dict__['__init__'] for klass in target.__mro__ if '__init__' in klass.__dict__
             ] if inspect.isclass(target) else [target]
    names: set = set()
    for init in inits:
        if init in (object.__init__, nn.Module.__init__):
            return names - {'self'}, init is object.__init__
        var_keyword = False
        for follow in (False, True):
            try:
                params = inspect.signature(init, follow_wrapped=follow).parameters.values()
            except (TypeError, ValueError):
                return names, True
            names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
            var_keyword = any(p.kind == p.VAR_KEYWORD for p in params)  # the original's, after follow=True
        if not var_keyword:
            return names - {'self'}, False
    return names - {'self'}, True


def _new_key_rule(container: dict, path: List[str], cfg: Any, runner_keys: set, options: dict
                  ) -> Tuple[set, bool, str]:
    """Which new keys ``container`` (at ``path``) accepts: (names, open, what it is); a ``type`` set by the options
    counts (``optim_wrapper.type=AmpOptimWrapper optim_wrapper.loss_scale=dynamic``)."""
    if not path:
        return (set(runner_keys) - {'self', 'cfg'}) | set(DOCUMENTED_TOP_LEVEL_KEYS), False, 'the config (top level)'
    names, is_open, what = {'type', '_scope_'}, True, f'{".".join(path)} (a dict without type)'
    targets = []
    type_name = options.get('.'.join(path + ['type']), container.get('type'))
    if type_name is not None:
        scopes = [container.get('_scope_'), cfg.get('default_scope')]
        found = _registered_class(type_name, [s for s in scopes if s])
        targets = [found] if found is not None else []
        what = f"{'.'.join(path)} ({type_name!r})"
    elif len(path) == 1 and path[0] in IMPLICIT_TYPES:
        targets = [_import_object(p) for p in IMPLICIT_TYPES[path[0]]]
        what = f"{path[0]} ({' / '.join(t.__qualname__ for t in targets)})"
    if targets:
        is_open = False
        for target in targets:
            accepted, target_open = accepted_arguments(target)
            names |= accepted
            is_open = is_open or target_open
        names -= {'runner', 'dataloader', 'evaluator'}  # given by the Runner, not by the config
        if type_name is None and path[0] == 'train_cfg':
            names.add('by_epoch')
    return names, is_open, what


def check_option_key(cfg: Any, key: str, value: Any, runner_keys: set, options: Optional[dict] = None) -> None:
    """Refuse a ``--cfg-options`` key that names no setting: every part of a dotted key must exist in the config,
    or be an argument the enclosing ``type`` takes (``train_dataloader.dataset.indices``, ``model.teacher_ckpt``),
    a Runner argument or a documented mmkd_ext key at the top level. Where the enclosing class swallows
    ``**kwargs`` or has no known type, a new key is refused only when it is close to an existing one
    (``default_hooks.checkpoint.max_keep_ckpt`` for ``max_keep_ckpts``).

    Args:
        cfg: the config as read.
        key: the option's key, e.g. ``'randomness.seed'``.
        value: the option's value, for the message.
        runner_keys: the arguments of MMEngine's ``Runner``.
        options: all the options (a ``type`` they set counts; keys under an option that sets a whole dict pass).

    Raises:
        UnknownOptionKeyError: names the key, where it is missing and the closest existing keys.
    """
    options = options or {}
    if any(key.startswith(other + '.') for other in options):
        return  # under a dict the options replace: the merge decides
    node, parts = getattr(cfg, '_cfg_dict', cfg), key.split('.')  # a Config is no dict; its ConfigDict is
    for depth, part in enumerate(parts):
        if isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                return  # MMEngine's merge reports a bad list index itself
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            return  # a value replaced by a dict: the merge decides
        if part in node:
            node = node[part]
            continue
        names, is_open, what = _new_key_rule(node, parts[:depth], cfg, runner_keys, options)
        if part in names:
            return
        known = sorted(set(node) | names)
        near = difflib.get_close_matches(part, known, n=3, cutoff=CLOSE_NAME_RATIO if is_open else 0.6)
        if is_open and not near:
            return
        fix = f"; did you mean {' or '.join(repr('.'.join(parts[:depth] + [n] + parts[depth + 1:])) for n in near)}?" \
            if near else ''
        raise UnknownOptionKeyError(
            f'--cfg-options {key}={value}: {what} has no key {part!r}{fix} Keys there: {known[:30]}. A misspelt '
            'key would be added as a new setting that nothing reads; fix the spelling (a new key is accepted '
            'where the enclosing type takes it as an argument).')


def check_cfg_options(cfg: Any, options: Optional[dict]) -> None:
    """Refuse ``--cfg-options`` that are misspelt (:func:`check_option_key`) or would change nothing: a top-level
    config variable whose value the config already copied into other settings when it was read (e.g. ``store_dir=``
    of the FKD configs, whose value went into ``train_dataloader.dataset.store_dir``, or ``teacher_ckpt=`` /
    ``data_root=``). Only string variables are checked for copies (paths, names); keys the MMEngine Runner reads are
    never refused as copies.

    Args:
        cfg: the config as read (before the options are merged).
        options: the ``--cfg-options`` dict (key=value), or None.

    Raises:
        UnknownOptionKeyError: a key names no setting (a ``KeyError``; names the closest keys).
        KeyError: names the option and the settings to override instead.
    """
    from mmengine.runner import Runner
    runner_keys = set(inspect.signature(Runner.__init__).parameters)  # read by the Runner itself
    for key, new in (options or {}).items():
        check_option_key(cfg, key, new, runner_keys, options)
        if '.' in key or key not in cfg or key in runner_keys:
            continue
        old = cfg[key]
        if not isinstance(old, str) or not old:  # paths and names; numbers and flags repeat by chance
            continue
        copies = _paths_with_value({k: v for k, v in cfg.items() if k != key}, old)
        if copies:
            listing = ' '.join(f'{p}={new}' for p in copies[:5])
            raise KeyError(f'--cfg-options {key}={new} would change nothing: the config copied the value of its '
                           f'variable {key!r} ({old!r}) into {copies[:5]} when it was read. Override those '
                           f'instead: --cfg-options {listing}')


TEACHER_PREFIX = 'teacher.'


def student_best_key(metrics: dict) -> Optional[str]:
    """What ``save_best='auto'`` tracks: the first metric that is not the teacher's.

    MMRazor's distillation val loops report the teacher too (``teacher.<metric>``); MMEngine's ``'auto'``
    takes the first key, which is the teacher's whenever the student produced no metric in the first
    evaluation (e.g. a detector without detections yet), and then keeps it for the whole run.

    Args:
        metrics: the metrics of one evaluation.

    Returns:
        The key, or None when only teacher metrics are present.
    """
    return next((k for k in metrics if not k.startswith(TEACHER_PREFIX)), None)


def _student_best(hook_cls: type) -> None:
    """``CheckpointHook`` saves "best" by the student: ``'auto'`` skips ``teacher.*`` keys, and an evaluation in
    which the student has no metric yet (only its ``teacher.`` twin) is skipped with a warning."""
    original = hook_cls._save_best_checkpoint
    if getattr(original, '_mmkd_checked', False):
        return

    @functools.wraps(original)
    def _save_best_checkpoint(self, runner, metrics):
        if self.save_best and 'auto' in self.key_indicators:
            key = student_best_key(metrics)
            if key is None:
                runner.logger.warning('save_best: the student has no metric in this evaluation (only the '
                                      "teacher's); the best checkpoint is not updated")
                return None
            self._init_rule(self.rules, [key])
        if self.save_best and any(k not in metrics and TEACHER_PREFIX + k in metrics for k in self.key_indicators):
            runner.logger.warning(f'save_best: the student has no {self.key_indicators} in this evaluation (only '
                                  "the teacher's); the best checkpoint is not updated")
            return None
        return original(self, runner, metrics)

    _save_best_checkpoint._mmkd_checked = True
    hook_cls._save_best_checkpoint = _save_best_checkpoint


class TooFewClassesError(IndexError):
    """A student classification head has fewer outputs than the training labels have classes."""


def check_head_classes(model: nn.Module, dataset) -> None:
    """Raise :class:`TooFewClassesError` before training when a student head cannot hold every label.

    Without it, cross-entropy fails deep in the first step with ``IndexError: Target 9 is out of bounds``.
    Heads under ``teacher`` are not checked (the teacher is not trained on the labels).

    Args:
        model: the (unwrapped) model or distillation algorithm.
        dataset: the training dataset; its ``metainfo['classes']`` gives the label set (skipped if absent).
    """
    from mmpretrain.models.heads import ClsHead
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    if not classes:
        return
    for name, module in model.named_modules():
        if name.split('.')[0] == 'teacher' or not isinstance(module, ClsHead):
            continue
        num = getattr(module, 'num_classes', None)
        if num is not None and num < len(classes):
            raise TooFewClassesError(
                f'student head {name!r} ({type(module).__name__}) has num_classes={num} but the training labels '
                f'have {len(classes)} classes ({type(dataset).__name__}: {list(classes)[:5]}...); set '
                f'num_classes={len(classes)} in that head (cross-entropy would fail at the first step with '
                f'"IndexError: Target {len(classes) - 1} is out of bounds")')
