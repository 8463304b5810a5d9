"""The CIFAR VGGs (with BN) of the distillation literature (vgg8, vgg11, vgg13, vgg16, vgg19).

These are the networks of the CRD benchmark (Tian et al., ICLR 2020; RepDistiller ``models/vgg.py``, the ``*_bn``
variants) that the VRM and KD-Zero papers report on CIFAR-100: five blocks of 3x3 conv (with bias) + BN + ReLU, a
2x2 max pooling after each of the first three blocks (and after the fourth only for 64 px inputs), no FC layers.
For a 32 px input the last block's map is 512 x 4 x 4; CRD average-pools it to 1 x 1 before its linear classifier,
which the ``GlobalAveragePooling`` neck does here.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

# name -> channels of the convs of each of the five blocks, as in the CRD repository's vgg.py ('S', 'A', 'B', 'D', 'E')
ARCHS = {
    'vgg8': ((64, ), (128, ), (256, ), (512, ), (512, )),
    'vgg11': ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
    'vgg13': ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    'vgg16': ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    'vgg19': ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


def _make_block(channels: Sequence[int], in_channels: int) -> nn.Sequential:
    layers = []
    for out_channels in channels:
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]
        in_channels = out_channels
    return nn.Sequential(*layers)


@MODELS.register_module()
class CIFARVGG(BaseBackbone):
    """CRD-style CIFAR VGG with batch normalisation.

    Args:
        arch: a key of :data:`ARCHS` (e.g. ``'vgg13'``), or a custom tuple of five tuples of conv channels.
        out_indices: which blocks to return (0-4); the last by default.
        in_channels: input image channels.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) block outputs (after ReLU), one per ``out_indices``; for a 32 px input the
        spatial sizes are 32, 16, 8, 4, 4.
    """

    def __init__(self, arch='vgg13', out_indices: Sequence[int] = (4, ), in_channels: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'unknown CIFARVGG arch {arch!r}; choose one of {sorted(ARCHS)} '
                               'or pass five tuples of conv channels')
            arch = ARCHS[arch]
        if len(arch) != 5:
            raise ValueError(f'CIFARVGG needs five blocks of conv channels, got {len(arch)}')
        self.stage_channels = tuple(block[-1] for block in arch)
        self.out_indices = tuple(out_indices)
        blocks, channels = [], in_channels
        for block in arch:
            blocks.append(_make_block(block, channels))
            channels = block[-1]
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        height = x.shape[2]
        outs = []
        for i, block in enumerate(self.blocks):
            # CRD: pool after blocks 0-2; after block 3 only for 64 px inputs (pool3 of vgg.py)
            if i in (1, 2, 3) or (i == 4 and height == 64):
                x = self.pool(x)
            x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
