"""MMRazor 1.0.0's shipped distillation configs on our stack: list, load, build without downloads.

The installed mmrazor package ships its configs under ``mmrazor/.mim/configs/distill`` (reachable as
``mmrazor::distill/...``). With :mod:`mmkd_ext.compat.renames` applied they load and build with
mmpretrain / mmdet 3 / mmseg 1; :func:`switch_off_downloads` replaces every weight a config would
download (teacher checkpoints, ``pretrained=True``, ``Pretrained`` initialisers) by random
initialisation and says so, one line per weight.
"""
from __future__ import annotations

import glob
import os.path as osp
from typing import Any, Dict, List

import mmrazor
from mmengine.config import Config, ConfigDict

ZOO_ROOT = osp.join(osp.dirname(mmrazor.__file__), '.mim', 'configs', 'distill')

# Shipped files that are not distillation jobs of our stack, each with the reason.
OUT_OF_SCOPE: Dict[str, str] = {
    'mmdet3d/pkd/pkd_fpn_fcos3d_r101_fcos3d_r50_8xb2-1x_nus-mono3d.py':
        'mmdet3d (monocular 3D detection on nuScenes) is not part of the mmkd_ext stack',
}
FRAGMENTS: Dict[str, str] = {
    'mmcls/crd/datasets/crd_cifar10_bs16.py': 'dataset settings of the CRD config (no model to build)',
}
# Configs whose model needs an optional package the stack does not install.
NEEDS_PACKAGE: Dict[str, str] = {
    'mmcls/deit/deit-base_regnety160_pt-16xb64_in1k.py': 'timm',  # RegNetY-160 teacher is mmpretrain's TIMMBackbone
}


def zoo_configs() -> List[str]:
    """Every distillation config the installed mmrazor ships, relative to :data:`ZOO_ROOT`, sorted."""
    paths = glob.glob(osp.join(ZOO_ROOT, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, ZOO_ROOT) for p in paths)


def buildable_configs() -> List[str]:
    """:func:`zoo_configs` without :data:`OUT_OF_SCOPE` and :data:`FRAGMENTS`."""
    return [c for c in zoo_configs() if c not in OUT_OF_SCOPE and c not in FRAGMENTS]


def load_zoo_config(rel_path: str) -> Config:
    """``Config.fromfile`` of a shipped config, e.g. ``'mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py'``."""
    return Config.fromfile(osp.join(ZOO_ROOT, rel_path))


def _is_download(value: Any) -> bool:
    return isinstance(value, str) and value != ''


def _switch_off(node: Any, where: str, lines: List[str]) -> None:
    """Recursive worker of :func:`switch_off_downloads` (edits ``node`` in place)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _switch_off(item, f'{where}[{i}]', lines)
        return
    if not isinstance(node, dict):
        return
    for key in list(node):
        value, here = node[key], f'{where}.{key}'
        if key == 'teacher_ckpt' and _is_download(value):
            node[key] = None
            lines.append(f'{here}: {value} -> None (teacher at random init)')
        elif key == 'ckpt_path' and _is_download(value):
            del node[key]  # DataFreeDistillation loads every teacher whose dict has the key
            lines.append(f'{here}: {value} -> removed (teacher at random init)')
        elif key == 'pretrained' and (value is True or _is_download(value)):
            node[key] = False if value is True else None
            source = node.get('cfg_path', node.get('model_name', value))
            lines.append(f'{here}: {value!r} ({source}) -> {node[key]} (random init)')
        elif key == 'init_cfg' and isinstance(value, dict) and value.get('type') == 'Pretrained':
            node[key] = None
            lines.append(f"{here}: Pretrained {value.get('checkpoint')} -> None (random init)")
        else:
            _switch_off(value, here, lines)


def switch_off_downloads(model_cfg: ConfigDict, where: str = 'model') -> List[str]:
    """Replace every weight ``model_cfg`` would download or read by random initialisation, in place.

    Covers ``teacher_ckpt``, DataFreeDistillation's ``ckpt_path``, ``pretrained=True`` of
    ``cfg_path`` models and timm backbones, ``pretrained='<url>'`` and ``init_cfg=dict(type='Pretrained')``.
    Weights named inside an external ``cfg_path`` config are read only by ``init_weights()``, which a
    build does not call.

    Args:
        model_cfg: a ``model`` dict of a config.
        where: the name of ``model_cfg`` in the messages.

    Returns:
        One line per replaced weight: where it was, what it named, what it became.
    """
    lines: List[str] = []
    _switch_off(model_cfg, where, lines)
    return lines


def inline_cfg_paths(node: Any) -> Any:
    """Replace every ``dict(cfg_path='pkg::file', ...)`` model by the model dict of that config, recursively.

    The same model ``mmengine.hub.get_model`` builds (the config's ``model`` with its ``data_preprocessor``, in the
    package's scope), written out so that :func:`switch_off_downloads` also reaches the weights the external config
    names (``init_cfg=dict(type='Pretrained', checkpoint='torchvision://...')``), which ``init_weights()`` would
    download during training.

    Args:
        node: a model config (dict / list / value).

    Returns:
        ``node`` with the ``cfg_path`` dicts replaced (other dicts are edited in place).
    """
    from mmengine.hub import get_config

    from .compat.renames import successor_cfg_path
    if isinstance(node, list):
        return [inline_cfg_paths(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get('cfg_path') and not node.get('type'):
        external = get_config(node['cfg_path'])
        model = external.model
        if 'data_preprocessor' in external:
            model.data_preprocessor = external.data_preprocessor
        model['_scope_'] = successor_cfg_path(node['cfg_path']).split('::')[0]
        return inline_cfg_paths(model)
    for key in node:
        node[key] = inline_cfg_paths(node[key])
    return node


DEMO_DATASETS = {'cls': 'digits_bs32.py', 'det': 'shapes_coco_bs8.py'}


def demo_smoke_config(rel_path: str, task: str, work_dir: str, iters: int = 2, batch_size: int = 2) -> Config:
    """A shipped config shrunk to ``iters`` training iterations on the built-in demo data, without downloads.

    The model is the shipped one (teachers and pretrained weights at random init, one printed line each); the train
    dataloader is the demo one of ``configs/_base_/datasets`` (digits for ``'cls'``, COCO-format shapes for ``'det'``;
    class ids 0-9 / 0-2 are valid for the shipped 10/80/1000-way heads), restricted to ``iters * batch_size`` images,
    one epoch; validation and testing are off. Make the data first (``python tools/misc/make_demo_data.py``).

    Args:
        rel_path: a config of :func:`buildable_configs`, e.g. ``'mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py'``.
        task: ``'cls'`` or ``'det'``: which demo data set to train on.
        work_dir: where the runner writes its logs.
        iters: training iterations.
        batch_size: images per iteration.

    Returns:
        The config, ready for ``Runner.from_cfg(cfg).train()``.
    """
    if task not in DEMO_DATASETS:
        raise ValueError(f'demo_smoke_config: task {task!r} is not one of {sorted(DEMO_DATASETS)}')
    cfg = load_zoo_config(rel_path)
    lines = switch_off_downloads(cfg.model)  # first the cfg_path flags (pretrained=True), then what they name
    cfg.model = inline_cfg_paths(cfg.model)
    print('\n'.join(lines + switch_off_downloads(cfg.model)))
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    demo = Config.fromfile(osp.join(repo, 'configs', '_base_', 'datasets', DEMO_DATASETS[task]))
    loader = demo.train_dataloader
    loader.dataset.indices = iters * batch_size
    loader.update(batch_size=batch_size, num_workers=0, persistent_workers=False)
    cfg.train_dataloader = loader
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=1)
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.load_from, cfg.resume, cfg.work_dir = None, False, work_dir
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, save_last=False, save_begin=2)
    return cfg
