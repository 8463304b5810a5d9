"""The CIFAR Wide ResNets of the distillation literature (wrn_40_2, wrn_16_2, wrn_40_1, wrn_16_1).

These are the networks of the CRD benchmark (Tian et al., ICLR 2020; RepDistiller ``models/wrn.py``) that the VRM
and KD-Zero papers report on CIFAR-100: a 3x3 16-channel stem, three stages of pre-activation BasicBlocks with
``(depth - 4) / 6`` blocks each and ``(16k, 32k, 64k)`` channels for widen factor ``k``, then a final BN + ReLU.
The last stage map (after that BN + ReLU) has ``64 * k`` channels; no dropout (CRD trains with ``dropRate=0``).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

# name -> (depth, widen_factor), as in the CRD repository's wrn.py
ARCHS = {
    'wrn_40_2': (40, 2),
    'wrn_40_1': (40, 1),
    'wrn_16_2': (16, 2),
    'wrn_16_1': (16, 1),
}


class PreActBlock(nn.Module):
    """BN-ReLU-3x3-BN-ReLU-3x3 block; a 1x1 projection of the pre-activated input when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU()
        # CRD: the shortcut is the identity whenever the width is unchanged (stride is then always 1)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        # CRD: a projection shortcut takes the pre-activated input, the identity the raw one
        return out + (x if self.shortcut is None else self.shortcut(pre))


@MODELS.register_module()
class CIFARWideResNet(BaseBackbone):
    """CRD-style CIFAR Wide ResNet (WRN-depth-k).

    Args:
        arch: a key of :data:`ARCHS` (e.g. ``'wrn_40_2'``), or a custom ``(depth, widen_factor)`` tuple;
            depth must be ``6n + 4``.
        out_indices: which stages to return (0, 1, 2); the last by default. Stage 2 includes the final BN + ReLU.
        in_channels: input image channels.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) stage outputs, one per ``out_indices``; ``C = (16k, 32k, 64k)``.
    """

    def __init__(self, arch='wrn_40_2', out_indices: Sequence[int] = (2, ), in_channels: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'unknown CIFARWideResNet arch {arch!r}; choose one of {sorted(ARCHS)} '
                               'or pass (depth, widen_factor)')
            arch = ARCHS[arch]
        depth, widen_factor = arch
        if (depth - 4) % 6 != 0:
            raise ValueError(f'CIFARWideResNet depth must be 6n+4 (10, 16, 22, 28, 40, ...), got {depth}')
        self.stage_channels = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.out_indices = tuple(out_indices)
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks = (depth - 4) // 6
        layers, channels = [], 16
        for i, out_channels in enumerate(self.stage_channels):
            stage = [PreActBlock(channels, out_channels, 1 if i == 0 else 2)]
            stage += [PreActBlock(out_channels, out_channels) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = layers
        self.final_bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3)):
            x = layer(x)
            if i == 2:
                x = self.relu(self.final_bn(x))
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
