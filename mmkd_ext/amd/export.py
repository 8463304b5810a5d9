"""Export of a pruned candidate as a physically smaller standard model (weights removed, not masked).

The exported config is the original model config with its backbone wrapped in
``AMDPrunedBackbone(backbone=<original>, widths={unit: kept})``: a registered builder (mmpretrain and
mmseg registries) that builds the original backbone and slices every prunable unit to its kept width,
so the module tree and state-dict keys stay those of the standard backbone and the checkpoint loads
as usual (``tools/test.py``, ``load_from``, ``init_cfg``).

Every backbone :func:`~mmkd_ext.amd.pruning.find_units` supports is rebuilt this way: ViT/DeiT (heads, FFN
neurons), Swin (heads: qkv rows, proj columns and relative-position-bias columns go, each ``WindowMSA``
becomes a :class:`~mmkd_ext.amd.pruning.PrunedWindowMSA` that keeps the original head width and scale; FFN
neurons), the mmpretrain/mmseg ResNets and CIFARResNet (residual-block inner channels), the CIFAR Wide ResNets
(pre-activation block inner channels) and the CIFAR VGGs (conv filters).
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.config import Config
from torch import nn

from ..registry import PRETRAIN_MODELS
from .pruning import find_units, shrink_to_widths


class _Holder(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone


def _pruned_backbone(registry, backbone: dict, widths: Dict[str, int], ffn_granularity: str = 'neuron') -> nn.Module:
    module = registry.build(backbone)
    holder = _Holder(module)
    shrink_to_widths(holder, find_units(holder, 'backbone', ffn_granularity), widths)
    return module


def AMDPrunedBackbone(backbone: dict, widths: Dict[str, int], ffn_granularity: str = 'neuron') -> nn.Module:
    """mmpretrain builder: ``backbone`` with every unit sliced to ``widths`` (see module docstring).

    Args:
        backbone: config of the unpruned backbone (e.g. ``dict(type='CIFARWideResNet', arch='wrn_40_2')``).
        widths: ``{unit name: kept structures}`` as returned by ``densify`` (names start with ``backbone.``).
        ffn_granularity: as used for pruning.

    Returns:
        The physically smaller backbone (load the exported weights into it).
    """
    return _pruned_backbone(PRETRAIN_MODELS, backbone, widths, ffn_granularity)


PRETRAIN_MODELS.register_module(name='AMDPrunedBackbone', module=AMDPrunedBackbone)

try:  # segmentation export (Table 8): the same builder in mmseg's registry
    from mmseg.registry import MODELS as SEG_MODELS

    def AMDPrunedSegBackbone(backbone: dict, widths: Dict[str, int], ffn_granularity: str = 'neuron') -> nn.Module:
        """mmseg builder of a pruned backbone (see :func:`AMDPrunedBackbone`)."""
        return _pruned_backbone(SEG_MODELS, backbone, widths, ffn_granularity)

    SEG_MODELS.register_module(name='AMDPrunedBackbone', module=AMDPrunedSegBackbone)
except ImportError:  # pragma: no cover - mmseg is part of the pinned environment
    SEG_MODELS = None


def pruned_model_config(model_cfg: dict, widths: Dict[str, int], ffn_granularity: str = 'neuron') -> dict:
    """The model config of the exported network.

    Args:
        model_cfg: the unpruned model config (e.g. the teacher's ``ImageClassifier``).
        widths: ``{unit name: kept}`` from :func:`mmkd_ext.amd.pruning.densify` (names start with ``backbone.``).
        ffn_granularity: as used for pruning.

    Returns:
        A config dict whose backbone builds the pruned shapes.
    """
    cfg = copy.deepcopy(dict(model_cfg))
    backbone = dict(cfg['backbone'])
    backbone.pop('init_cfg', None)  # weights come from the exported checkpoint
    scope = cfg.get('_scope_')
    wrapped = dict(type='AMDPrunedBackbone', backbone=backbone, widths=dict(widths), ffn_granularity=ffn_granularity)
    if scope:
        wrapped['_scope_'] = scope
    cfg['backbone'] = wrapped
    return cfg


def export_pruned(model: nn.Module, model_cfg: dict, widths: Dict[str, int], out_dir: str, name: str,
                  ffn_granularity: str = 'neuron',
                  extra: Optional[dict] = None) -> Dict[str, str]:
    """Save a densified model as ``<name>.pth`` (``state_dict``) and ``<name>.py`` (a config that builds it).

    Args:
        model: the densified model (:func:`mmkd_ext.amd.pruning.densify` already applied).
        model_cfg: its unpruned model config.
        widths: kept widths returned by ``densify``.
        out_dir: output folder.
        name: file stem.
        ffn_granularity: as used for pruning.
        extra: extra top-level config entries (data loaders, evaluators, default_scope, measured scale).

    Returns:
        ``{'checkpoint': path, 'config': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    ckpt = osp.join(out_dir, f'{name}.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': dict(amd_widths=dict(widths))}, ckpt)
    cfg_dict = dict(model=pruned_model_config(model_cfg, widths, ffn_granularity), load_from=osp.abspath(ckpt))
    cfg_dict.update(extra or {})
    cfg_path = osp.join(out_dir, f'{name}.py')
    Config(cfg_dict).dump(cfg_path)
    return dict(checkpoint=ckpt, config=cfg_path)
