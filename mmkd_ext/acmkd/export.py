"""Export ACMKD students as standalone mmpretrain checkpoints.

A student checkpoint holds the student classifier's ``state_dict`` (no ``student_<name>.classifier.``
prefix, no attention modules) and ``meta.model_cfg``, its mmpretrain config, so it loads with
``mmengine.runner.load_checkpoint(classifier, path)`` or ``mmpretrain.apis.init_model(cfg, path)``.
:func:`export_students` also writes ``<student>.py`` beside it (as AMD's export does): the student's model,
``load_from`` the exported weights, and the data / evaluation settings of the training run (read from the
checkpoint's ``meta.cfg``), so ``python tools/test.py <student>.py <student>.pth`` evaluates it on its own.
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
        if name in cfgs:
            write_student_config(cfgs[name], path, checkpoint.get('meta', {}).get('cfg'))
        written[name] = path
    return written


# settings of the training run a standalone test of the student needs
TEST_KEYS = ('val_dataloader', 'val_evaluator', 'test_dataloader', 'test_evaluator', 'env_cfg')


def write_student_config(model_cfg: dict, ckpt: str, train_cfg_text: Optional[str] = None) -> str:
    """Write ``<ckpt without .pth>.py``: the student's model, ``load_from=ckpt`` and the run's test settings.

    Args:
        model_cfg: the student's mmpretrain model config.
        ckpt: the exported student checkpoint.
        train_cfg_text: the training config as text (MMEngine stores it in ``meta.cfg`` of its checkpoints);
            without it the config holds the model only (add data settings to test it).

    Returns:
        The config path.
    """
    from mmengine.config import Config
    cfg_dict = dict(model=dict(model_cfg), load_from=osp.abspath(ckpt), default_scope='mmpretrain',
                    val_cfg=dict(), test_cfg=dict(), custom_imports=dict(imports=['mmkd_ext'],
                                                                         allow_failed_imports=False))
    if train_cfg_text:
        train_cfg = Config.fromstring(train_cfg_text, '.py')
        cfg_dict.update({k: copy.deepcopy(train_cfg[k]) for k in TEST_KEYS if k in train_cfg})
    path = osp.splitext(ckpt)[0] + '.py'
    Config(cfg_dict).dump(path)
    return path


def plain_cfg(cfg):
    """A config as plain Python containers (dict/list/tuple/str/number), loadable with ``weights_only=True``."""
    if isinstance(cfg, Mapping):
        return {str(k): plain_cfg(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(plain_cfg(v) for v in cfg)
    return copy.deepcopy(cfg)
