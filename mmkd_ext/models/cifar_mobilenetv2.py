"""The CIFAR MobileNetV2 of the distillation literature (``mobile_half``: expansion 6, width 0.5).

This is the network of the CRD benchmark (Tian et al., ICLR 2020; RepDistiller ``models/mobilenetv2.py``, from
"Knowledge Distillation via Route Constrained Optimization") that the VRM and KD-Zero papers report on CIFAR-100.
It differs from mmpretrain's ``MobileNetV2``: the second group of blocks keeps stride 1 (CIFAR strides: the 32 px
input ends at 2 x 2), every block has the 1x1 expansion conv (also the first, with ``t = 1``), ReLU instead of
ReLU6, channels are ``int(c * width_mult)`` without rounding to 8, and the last 1x1 conv has 1280 channels for
any ``width_mult <= 1``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .stages import forward_stages


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU())


class InvertedResidual(nn.Module):
    """1x1 expand - 3x3 depthwise - 1x1 linear projection; identity residual when the shape is unchanged."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_res_connect = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


@MODELS.register_module()
class CIFARMobileNetV2(BaseBackbone):
    """CRD-style CIFAR MobileNetV2.

    Args:
        width_mult: channel multiplier (CRD's ``mobile_half``: 0.5).
        expand_ratio: the expansion ``T`` of every block group but the first (CRD: 6).
        out_indices: which stages to return: 0-6 the seven groups of inverted residual blocks, 7 the final 1x1
            conv (``1280`` channels for ``width_mult <= 1``, else ``int(1280 * width_mult)``); 7 by default.
        in_channels: input image channels.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) stage outputs, one per ``out_indices``; for a 32 px input and width 0.5,
        ``C = (8, 12, 16, 32, 48, 80, 160, 1280)`` at spatial sizes 16, 16, 8, 4, 4, 2, 2, 2.
    """

    # t, c, n, s, as in the CRD repository's mobilenetv2.py (t = None: the expand_ratio argument)
    arch_settings = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2), (None, 96, 3, 1),
                     (None, 160, 3, 2), (None, 320, 1, 1))

    def __init__(self, width_mult: float = 0.5, expand_ratio: int = 6, out_indices: Sequence[int] = (7, ),
                 in_channels: int = 3, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 < width_mult:
            raise ValueError(f'CIFARMobileNetV2 width_mult must be positive, got {width_mult}')
        self.out_indices = tuple(out_indices)
        channels = int(32 * width_mult)
        self.stem = _conv_bn_relu(in_channels, channels, 3, 2)
        layers, stage_channels = [], []
        for t, c, n, s in self.arch_settings:
            out_channels = int(c * width_mult)
            blocks = []
            for stride in [s] + [1] * (n - 1):
                blocks.append(InvertedResidual(channels, out_channels, stride, expand_ratio if t is None else t))
                channels = out_channels
            layers.append(nn.Sequential(*blocks))
            stage_channels.append(out_channels)
        self.layers = nn.ModuleList(layers)
        last_channels = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(channels, last_channels, 1)
        self.stage_channels = tuple(stage_channels) + (last_channels, )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        return forward_stages(x, [*self.layers, self.conv2], self.out_indices)
