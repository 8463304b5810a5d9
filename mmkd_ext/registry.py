"""One import site for the registries mmkd_ext registers into.

Algorithms, distillers, losses, hooks and loops live in MMRazor's registries (``default_scope``
``'mmrazor'``); backbones and data pieces that are ordinary mmpretrain components (a CIFAR ResNet,
a dataset wrapper, a transform) live in mmpretrain's, so that a student or dataset built under
``_scope_='mmpretrain'`` finds them like any other mmpretrain component.
"""
from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmrazor.registry import DATASETS, HOOKS, LOOPS, METRICS, MODEL_WRAPPERS, MODELS, TASK_UTILS, TRANSFORMS

__all__ = [
    'MODELS', 'TASK_UTILS', 'HOOKS', 'LOOPS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'MODEL_WRAPPERS',
    'PRETRAIN_MODELS', 'PRETRAIN_DATASETS', 'PRETRAIN_TRANSFORMS'
]
