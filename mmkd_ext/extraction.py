"""The way out of a distillation checkpoint: the student as a plain mmpretrain / mmdet / mmseg model.

``tools/model_converters/extract_student.py CONFIG CHECKPOINT --out DIR`` asks the algorithm's room what its
student is (a :class:`Student`: model config + weights) and writes, per student, ``DIR/<name>.py`` (a config of
the task package: the model, the test/val data and evaluators, ``default_scope`` of the package, plain
``ValLoop``/``TestLoop``) and ``DIR/<name>.pth`` (``state_dict`` with the student's own keys, ``meta``). The
config imports mmkd_ext (``custom_imports``) only when one of its types is an mmkd_ext class (a CIFAR backbone,
AMD's pruned backbone, ...); otherwise it is a config of the task package alone.

Rooms say what their student is with :func:`register_students`; algorithms whose student is MMRazor's
``architecture`` (``SingleTeacherDistill``, ``FpnTeacherDistill`` and subclasses) use
:func:`architecture_students`.
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint, weights_to_cpu

# task package (default_scope) -> its visualizer, as in that package's own configs
VISUALIZERS = dict(mmpretrain='UniversalVisualizer', mmdet='DetLocalVisualizer', mmseg='SegLocalVisualizer')
# settings of the distillation config a test/inference config keeps
DATA_KEYS = ('val_dataloader', 'val_evaluator', 'test_dataloader', 'test_evaluator', 'env_cfg', 'default_hooks',
             'log_processor', 'log_level')


@dataclass
class Student:
    """One student of a distillation checkpoint.

    Attributes:
        name: file stem of the written config and weights (``'student'``, or an ACMKD student's name).
        model: its model config in the task package (``_scope_`` set, no ``cfg_path`` form).
        state_dict: its weights with its own keys (no ``architecture.`` prefix).
        meta: extra checkpoint metadata (e.g. AMD's kept widths).
    """
    name: str
    model: dict
    state_dict: Dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)


StudentFinder = Callable[[Config, str], List[Student]]
_FINDERS: Dict[str, StudentFinder] = {}


class UnknownAlgorithmError(KeyError):
    """The config's algorithm has no registered student finder."""


def register_students(*algorithm_types: str) -> Callable[[StudentFinder], StudentFinder]:
    """Decorator: ``finder(cfg, checkpoint) -> [Student, ...]`` tells the extractor what these algorithms' students
    are (``cfg``: the distillation config; ``checkpoint``: the path the user gave)."""
    def decorate(finder: StudentFinder) -> StudentFinder:
        for name in algorithm_types:
            _FINDERS[name] = finder
        return finder
    return decorate


def algorithm_type(cfg: Config) -> str:
    """``cfg.model.type`` without its registry scope (``'mmrazor.X'`` -> ``'X'``)."""
    return str(cfg.model.get('type', '')).split('.')[-1]


def students_of(cfg: Config, checkpoint: str) -> List[Student]:
    """The students of a distillation run, asked from the room of its algorithm.

    Args:
        cfg: the distillation config.
        checkpoint: its checkpoint (or, for AMD, its pipeline work dir; see the room's finder).

    Returns:
        One :class:`Student` per student.
    """
    kind = algorithm_type(cfg)
    if kind not in _FINDERS:
        raise UnknownAlgorithmError(
            f'no student extractor for model type {kind!r}; known algorithms: {sorted(_FINDERS)}. A room adds one '
            'with mmkd_ext.extraction.register_students')
    return _FINDERS[kind](cfg, checkpoint)


# -- reading checkpoints and model configs -----------------------------------------------------------------------
def load_state(checkpoint: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """``(state_dict, meta)`` of a checkpoint, loaded weights-only (mmkd_ext.compat); ``module.`` prefixes dropped."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    return state, dict(ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}


def strip_prefix(state: Dict[str, torch.Tensor], prefix: str, checkpoint: str) -> Dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with the prefix removed; an error when there are none."""
    out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not out:
        tops = sorted({k.split('.')[0] for k in state})
        raise KeyError(f'checkpoint {checkpoint!r} holds no weights under {prefix!r} (its top-level modules: {tops}); '
                       'is it a checkpoint of this config?')
    return out


def resolve_model_cfg(model_cfg: dict) -> dict:
    """A model config as a plain dict; MMRazor's ``dict(cfg_path='mmdet::...', pretrained=False)`` form is loaded.

    Args:
        model_cfg: a model config, or MMRazor's ``cfg_path`` reference to a task package's config.

    Returns:
        The model config with ``_scope_`` set (from the referenced config's ``default_scope``) and, for
        ``pretrained=False``, the backbone's ``init_cfg`` dropped; a referenced config's top-level
        ``data_preprocessor`` (mmpretrain style) becomes the model's, as the Runner would do.
    """
    model_cfg = copy.deepcopy(dict(model_cfg))
    if 'cfg_path' not in model_cfg:
        return model_cfg
    loaded = Config.fromfile(model_cfg['cfg_path'])
    out = dict(loaded.model.to_dict())
    if model_cfg.get('pretrained') is False:
        out.pop('pretrained', None)
        if isinstance(out.get('backbone'), dict):
            out['backbone'].pop('init_cfg', None)
    scope = loaded.get('default_scope')
    if scope and '_scope_' not in out:
        out['_scope_'] = scope
    if 'data_preprocessor' not in out and loaded.get('data_preprocessor') is not None:
        out['data_preprocessor'] = loaded.data_preprocessor.to_dict()
    return out


def _plain(value):
    """ConfigDicts as plain dicts and lists (recursively)."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def architecture_students(cfg: Config, checkpoint: str) -> List[Student]:
    """The student of an MMRazor ``BaseAlgorithm`` distiller: ``model.architecture``, weights ``architecture.*``.

    The algorithm-level ``data_preprocessor`` (when the config sets one) is what the student saw in training and
    at validation, so it becomes the student's.
    """
    model = resolve_model_cfg(_plain(cfg.model.architecture))
    if cfg.model.get('data_preprocessor') is not None:
        model['data_preprocessor'] = _plain(cfg.model.data_preprocessor)
    state, _ = load_state(checkpoint)
    return [Student('student', model, strip_prefix(state, 'architecture.', checkpoint))]


register_students('SingleTeacherDistill', 'FpnTeacherDistill')(architecture_students)  # MMRazor's own distillers


# -- writing ------------------------------------------------------------------------------------------------------
def task_scope(model: dict) -> str:
    """The task package of a student model config (its ``_scope_``)."""
    scope = model.get('_scope_')
    if scope not in VISUALIZERS:
        raise ValueError(f"the student's model config has _scope_={scope!r}; a student must be a model of one of "
                         f'{sorted(VISUALIZERS)} (set _scope_ in its config)')
    return scope


def _types(node) -> Iterator[str]:
    """Every ``type`` string in a nested config."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield node['type']
        for value in node.values():
            yield from _types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _types(value)


def mmkd_ext_types(cfg_dict: dict, scope: str) -> List[str]:
    """The types of ``cfg_dict`` that resolve to mmkd_ext classes in the registries of package ``scope``."""
    from mmengine.registry import DefaultScope, Registry
    found = []
    with DefaultScope.overwrite_default_scope(scope):
        registries = [r for r in _scope_registries(scope) if isinstance(r, Registry)]
        for name in sorted(set(_types(cfg_dict))):
            for registry in registries:
                obj = registry.get(name)
                if obj is not None:
                    if getattr(obj, '__module__', '').startswith('mmkd_ext'):
                        found.append(name)
                    break
    return found


def _scope_registries(scope: str) -> list:
    """MODELS, DATASETS, TRANSFORMS, METRICS and VISUALIZERS of a task package."""
    import importlib
    registry = importlib.import_module(f'{scope}.registry')
    return [registry.MODELS, registry.DATASETS, registry.TRANSFORMS, registry.METRICS, registry.VISUALIZERS]


def _plain_loops(cfg_dict: dict) -> None:
    """Distillation val/test loops (e.g. ``SingleTeacherDistillValLoop``) become MMEngine's ``ValLoop``/``TestLoop``."""
    cfg_dict['val_cfg'] = dict(type='ValLoop')
    cfg_dict['test_cfg'] = dict(type='TestLoop')


def _drop_pretrained_init(model: dict) -> None:
    """Pretrained ``init_cfg`` entries go: the weights come from the extracted checkpoint."""
    for part in (model, model.get('backbone')):
        if isinstance(part, dict) and isinstance(part.get('init_cfg'), dict) and \
                part['init_cfg'].get('type') == 'Pretrained':
            part.pop('init_cfg')


def student_config(cfg: Config, student: Student) -> dict:
    """The student's own config: its model, the distillation config's test/val data and runtime, plain loops.

    Args:
        cfg: the distillation config.
        student: the student.

    Returns:
        A config dict of the task package (``default_scope`` = the student's scope).
    """
    model = copy.deepcopy(student.model)
    scope = task_scope(model)
    if model.get('_scope_') == scope:
        model.pop('_scope_')
    _drop_pretrained_init(model)
    out = dict(default_scope=scope, model=model)
    out.update({k: _plain(cfg[k]) for k in DATA_KEYS if k in cfg})
    _plain_loops(out)
    out['visualizer'] = dict(type=VISUALIZERS[scope], vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
    if mmkd_ext_types(out, scope):
        out['custom_imports'] = dict(imports=['mmkd_ext'], allow_failed_imports=False)
    return out


def write_student(cfg: Config, student: Student, out_dir: str, meta: Optional[dict] = None) -> Dict[str, str]:
    """Write ``<out_dir>/<name>.py`` and ``<out_dir>/<name>.pth`` of one student.

    Args:
        cfg: the distillation config.
        student: the student.
        out_dir: output folder (created).
        meta: checkpoint metadata to keep (``dataset_meta``, ...), merged under the student's own.

    Returns:
        ``{'config': path, 'checkpoint': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    config_path = osp.join(out_dir, f'{student.name}.py')
    Config(student_config(cfg, student)).dump(config_path)
    ckpt_path = osp.join(out_dir, f'{student.name}.pth')
    weights = weights_to_cpu(OrderedDict(student.state_dict))
    save_checkpoint(dict(state_dict=weights, meta={**(meta or {}), **student.meta}), ckpt_path)
    return dict(config=config_path, checkpoint=ckpt_path)


def kept_meta(checkpoint: str) -> dict:
    """Metadata of a distillation checkpoint worth keeping on the student (``dataset_meta``), if it is a file."""
    if not osp.isfile(checkpoint):
        return {}
    _, meta = load_state(checkpoint)
    return {k: meta[k] for k in ('dataset_meta', 'mmengine_version', 'epoch', 'iter') if k in meta}


def extract_students(config: str, checkpoint: str, out_dir: str,
                     names: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, str]]:
    """Extract the students of a distillation checkpoint (see the module docstring).

    Args:
        config: the distillation config (a path or an ``mmkd_ext::`` path).
        checkpoint: its checkpoint (AMD: the pipeline work dir, its ``amd_state.json`` or a file in it).
        out_dir: where ``<name>.py`` / ``<name>.pth`` go.
        names: students to write (default: all).

    Returns:
        student name -> ``{'config': path, 'checkpoint': path}``.
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(config)
    students = students_of(cfg, checkpoint)
    known = [s.name for s in students]
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise KeyError(f'no student {unknown} in this {algorithm_type(cfg)} checkpoint; its students are {known}')
    meta = dict(kept_meta(checkpoint), student_of=algorithm_type(cfg), source=osp.abspath(checkpoint))
    return {s.name: write_student(cfg, s, out_dir, meta) for s in students if not names or s.name in names}
