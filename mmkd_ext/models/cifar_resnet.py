"""The CIFAR ResNets of the distillation literature (resnet8/20/32/56/110, resnet8x4, resnet32x4).

These are the networks of the CRD benchmark (Tian et al., ICLR 2020) that the VRM, KD-Zero and
AMD papers report on CIFAR-100: a 3x3 stem, three stages of BasicBlocks with ``(depth - 2) / 6``
blocks each, and ``stage_channels`` of (16, 32, 64), or (64, 128, 256) with a 32-channel stem for
the "x4" variants; ``resnet8x0.5`` (ours) halves resnet8's widths for the
digits demo. mmpretrain's ``ResNet_CIFAR`` is the ImageNet ResNet with a CIFAR stem, a much
larger network, so it is not a substitute.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .stages import forward_stages

# name -> (depth, stem_channels, stage_channels), as in the CRD repository's resnet.py
ARCHS = {
    'resnet8': (8, 16, (16, 32, 64)),
    'resnet14': (14, 16, (16, 32, 64)),
    'resnet20': (20, 16, (16, 32, 64)),
    'resnet32': (32, 16, (16, 32, 64)),
    'resnet44': (44, 16, (16, 32, 64)),
    'resnet56': (56, 16, (16, 32, 64)),
    'resnet110': (110, 16, (16, 32, 64)),
    'resnet8x4': (8, 32, (64, 128, 256)),
    'resnet8x0.5': (8, 8, (8, 16, 32)),  # ours: the half-width resnet8 of the digits demo (0.02 M parameters)
    'resnet32x4': (32, 32, (64, 128, 256)),
}


class BasicBlock(nn.Module):
    """3x3-3x3 residual block; a 1x1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@MODELS.register_module()
class CIFARResNet(BaseBackbone):
    """CRD-style CIFAR ResNet.

    Args:
        arch: a key of :data:`ARCHS` (e.g. ``'resnet8x4'``), or a custom
            ``(depth, stem_channels, stage_channels)`` tuple; depth must be ``6n + 2``.
        out_indices: which stages to return (0, 1, 2); the last by default.
        in_channels: input image channels.
        input_size: resize every input (bilinear) to ``input_size x input_size`` before the stem, e.g. 32 for a
            teacher trained on 32 px CIFAR images that distils a student fed 224 px upsampled ones (KD-Zero's and
            VRM's CNN -> ViT pairs); None (default) keeps the input as it comes. Parameters are unchanged, so the
            released 32 px checkpoints load as they are.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) stage outputs, one per ``out_indices``.
    """

    def __init__(self, arch='resnet8x4', out_indices: Sequence[int] = (2, ), in_channels: int = 3,
                 input_size: Optional[int] = None, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.input_size = input_size
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'unknown CIFARResNet arch {arch!r}; choose one of {sorted(ARCHS)} '
                               'or pass (depth, stem_channels, stage_channels)')
            arch = ARCHS[arch]
        depth, stem_channels, stage_channels = arch
        if (depth - 2) % 6 != 0:
            raise ValueError(f'CIFARResNet depth must be 6n+2 (8, 14, 20, ...), got {depth}')
        self.stage_channels = tuple(stage_channels)
        self.out_indices = tuple(out_indices)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_channels),
            nn.ReLU())
        blocks = (depth - 2) // 6
        layers, channels = [], stem_channels
        for i, out_channels in enumerate(stage_channels):
            stage = [BasicBlock(channels, out_channels, 1 if i == 0 else 2)]
            stage += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = layers

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.input_size is not None and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode='bilinear', align_corners=False)
        x = self.stem(x)
        return forward_stages(x, (self.layer1, self.layer2, self.layer3), self.out_indices)
