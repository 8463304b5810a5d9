"""One optimizer per ACMKD student (MMEngine ``OptimWrapperDict``).

Config::

    optim_wrapper = dict(
        constructor='ACMKDOptimWrapperConstructor',
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        # optional per-student (or 'teacher_attention') overrides, merged into the template:
        overrides=dict(vit=dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))))

Every student (its classifier and its attention modules) gets a copy of ``optim_wrapper``, and the
teacher's CBAM modules, while they are pre-trained, get one too; parameters never overlap.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get('_delete_', False):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy({k: v for k, v in value.items() if k != '_delete_'}
                                     if isinstance(value, dict) else value)
    return out


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ACMKDOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` with one wrapper per module of ``model.optim_groups()``.

    Args:
        optim_wrapper_cfg: ``dict(optim_wrapper=<OptimWrapper cfg template>, overrides=dict(name=partial cfg))``;
            ``paramwise_cfg`` inside the template applies per student.
        paramwise_cfg: not used at this level (put it inside the template).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        cfg = dict(optim_wrapper_cfg)
        cfg.pop('constructor', None)
        if 'optim_wrapper' not in cfg:
            raise KeyError("ACMKDOptimWrapperConstructor needs optim_wrapper=dict(type='OptimWrapper', optimizer=...)"
                           f' as the template of every student; got keys {sorted(cfg)}')
        if paramwise_cfg is not None:
            raise ValueError('put paramwise_cfg inside optim_wrapper (the per-student template)')
        self.template = dict(cfg.pop('optim_wrapper'))
        self.overrides: Dict[str, dict] = dict(cfg.pop('overrides', {}) or {})
        if cfg:
            raise KeyError(f'unknown keys {sorted(cfg)} for ACMKDOptimWrapperConstructor; '
                           'use optim_wrapper and overrides')

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'optim_groups'):
            raise TypeError(f'ACMKDOptimWrapperConstructor works with ACMKDDistill, not {type(model).__name__}')
        groups = model.optim_groups()
        unknown = sorted(set(self.overrides) - set(groups))
        if unknown:
            raise KeyError(f'optimizer overrides for {unknown}, which are not optimised modules; '
                           f'the modules are {list(groups)}')
        wrappers = {}
        for name, module in groups.items():
            cfg = _merge(self.template, self.overrides.get(name, {}))
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(module)
        return OptimWrapperDict(**wrappers)
