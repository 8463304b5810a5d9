"""Export ACMKD students as standalone mmpretrain checkpoints.

A student checkpoint holds the student classifier's ``state_dict`` (no ``student_<name>.classifier.``
prefix, no attention modules) and ``meta.model_cfg``, its mmpretrain config, so it loads with
``mmengine.runner.load_checkpoint(classifier, path)`` or ``mmpretrain.apis.init_model(cfg, path)``.
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional

import torch
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint, weights_to_cpu


def student_state_dict(algorithm_state: Dict[str, torch.Tensor], name: str) -> Dict[str, torch.Tensor]:
    """The classifier weights of student ``name`` from an ``ACMKDDistill`` state dict, prefix removed.

    Args:
        algorithm_state: ``ACMKDDistill.state_dict()`` (or a checkpoint's ``state_dict``).
        name: student name.

    Returns:
        The student classifier's state dict.
    """
    prefix = f'student_{name}.classifier.'
    state = {k[len(prefix):]: v for k, v in algorithm_state.items() if k.startswith(prefix)}
    if not state:
        students = sorted({k.split('.')[0][len('student_'):] for k in algorithm_state if k.startswith('student_')})
        raise KeyError(f'no student {name!r} in this ACMKD checkpoint; its students are {students}')
    return state


def save_student(algorithm, name: str, path: str, meta: Optional[dict] = None) -> str:
    """Write student ``name`` of a built ``ACMKDDistill`` as a standalone mmpretrain checkpoint.

    Args:
        algorithm: the (unwrapped) algorithm.
        name: student name.
        path: output ``.pth`` file.
        meta: extra metadata (epoch, accuracy, ...).

    Returns:
        ``path``.
    """
    classifier = algorithm.student(name)
    checkpoint = dict(state_dict=weights_to_cpu(classifier.state_dict()),
                      meta=dict(acmkd_student=name, model_cfg=plain_cfg(algorithm.student_cfgs[name]), **(meta or {})))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    save_checkpoint(checkpoint, path)
    return path


def export_students(checkpoint_path: str, out_dir: str, names: Optional[List[str]] = None) -> Dict[str, str]:
    """Split an ``ACMKDDistill`` training checkpoint into one mmpretrain checkpoint per student.

    Args:
        checkpoint_path: e.g. ``work_dirs/acmkd/epoch_30.pth``.
        out_dir: output directory; files are ``<student>.pth``.
        names: students to export (default: all in the checkpoint).

    Returns:
        student name -> written path.
    """
    checkpoint = _load_checkpoint(checkpoint_path, map_location='cpu')  # weights-only (mmkd_ext.compat)
    state = checkpoint.get('state_dict', checkpoint)
    found = sorted({k.split('.')[0][len('student_'):] for k in state if k.startswith('student_')})
    names = names or found
    cfgs = (checkpoint.get('meta', {}).get('acmkd') or {}).get('student_cfgs', {})
    written = {}
    for name in names:
        meta = dict(acmkd_student=name, source=osp.abspath(checkpoint_path))
        if name in cfgs:
            meta['model_cfg'] = cfgs[name]
        path = osp.join(out_dir, f'{name}.pth')
        os.makedirs(out_dir, exist_ok=True)
        save_checkpoint(dict(state_dict=student_state_dict(state, name), meta=meta), path)
        written[name] = path
    return written


def plain_cfg(cfg):
    """A config as plain Python containers (dict/list/tuple/str/number), loadable with ``weights_only=True``."""
    if isinstance(cfg, Mapping):
        return {str(k): plain_cfg(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain_cfg(v) for v in cfg)
    return copy.deepcopy(cfg)
