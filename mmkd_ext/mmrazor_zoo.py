"""MMRazor 1.0.0's shipped distillation configs on our stack: list, load, build without downloads.

The installed mmrazor package ships its configs under ``mmrazor/.mim/configs/distill`` (reachable as
``mmrazor::distill/...``). With :mod:`mmkd_ext.compat.renames` applied they load and build with
mmpretrain / mmdet 3 / mmseg 1. Weights a config would download (teacher checkpoints, ``pretrained=True``,
``Pretrained`` initialisers, DataFree ``ckpt_path``) are switched to random initialisation by the config check's
:func:`mmkd_ext.weight_sources.replace_unavailable_weights`, one line per weight.
"""
from __future__ import annotations

import glob
import os.path as osp
from typing import Dict, List

import mmrazor
from mmengine.config import Config

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
