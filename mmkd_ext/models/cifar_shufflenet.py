"""The CIFAR ShuffleNets of the distillation literature (ShuffleV1 with 3 groups, ShuffleV2 of size 1).

These are the networks of the CRD benchmark (Tian et al., ICLR 2020; RepDistiller ``models/ShuffleNetv1.py`` and
``models/ShuffleNetv2.py``, after kuangliu's pytorch-cifar) that the VRM and KD-Zero papers report on CIFAR-100:
a 1x1 24-channel stem (no max pooling), three stages that each halve the resolution in their first unit (32 px
input: 16, 8, 4), and for V2 a final 1x1 conv + BN + ReLU. CRD average-pools the 4 x 4 map before its linear
classifier, which the ``GlobalAveragePooling`` neck does here.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from .stages import forward_stages


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[N, C, H, W] -> [N, g, C/g, H, W] -> [N, C/g, g, H, W] -> [N, C, H, W]."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


# ---------------------------------------------------------------- ShuffleNetV1

# groups -> (stage out channels, units per stage), as in the CRD repository's ShuffleNetv1.py (only g = 3 there)
V1_ARCHS = {3: ((240, 480, 960), (4, 8, 4))}


class ShuffleV1Unit(nn.Module):
    """Grouped 1x1 - shuffle - 3x3 depthwise - grouped 1x1; stride 2 concatenates a 3x3 average-pooled shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.stride = stride
        mid = out_channels // 4
        self.groups1 = 1 if in_channels == 24 else groups  # CRD: the first unit after the 24-channel stem
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=self.groups1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.groups1)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        return F.relu(torch.cat([out, res], 1) if self.stride == 2 else out + res)


@MODELS.register_module()
class CIFARShuffleNetV1(BaseBackbone):
    """CRD-style CIFAR ShuffleNetV1 (``ShuffleV1``).

    Args:
        groups: groups of the 1x1 convs; a key of :data:`V1_ARCHS` (CRD defines 3 only).
        out_indices: which stages to return (0, 1, 2); the last by default.
        in_channels: input image channels.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) stage outputs, one per ``out_indices``; ``C = (240, 480, 960)`` for g = 3.
    """

    def __init__(self, groups: int = 3, out_indices: Sequence[int] = (2, ), in_channels: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if groups not in V1_ARCHS:
            raise KeyError(f'unknown CIFARShuffleNetV1 groups {groups!r}; choose one of {sorted(V1_ARCHS)}')
        stage_channels, num_units = V1_ARCHS[groups]
        self.stage_channels = tuple(stage_channels)
        self.out_indices = tuple(out_indices)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        layers, channels = [], 24
        for out_channels, n in zip(stage_channels, num_units):
            # the first unit concatenates its input, so its branch only adds out_channels - channels
            units = [ShuffleV1Unit(channels, out_channels - channels, 2, groups)]
            units += [ShuffleV1Unit(out_channels, out_channels, 1, groups) for _ in range(n - 1)]
            layers.append(nn.Sequential(*units))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = layers

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        return forward_stages(x, (self.layer1, self.layer2, self.layer3), self.out_indices)


# ---------------------------------------------------------------- ShuffleNetV2

# net_size -> (out channels of the three stages and the final 1x1 conv, basic units per stage after the down unit),
# as in the CRD repository's ShuffleNetv2.py
V2_ARCHS = {
    0.2: ((40, 80, 160, 512), (3, 3, 3)),
    0.3: ((40, 80, 160, 512), (3, 7, 3)),
    0.5: ((48, 96, 192, 1024), (3, 7, 3)),
    1: ((116, 232, 464, 1024), (3, 7, 3)),
    1.5: ((176, 352, 704, 1024), (3, 7, 3)),
    2: ((224, 488, 976, 2048), (3, 7, 3)),
}


class ShuffleV2BasicUnit(nn.Module):
    """Split in halves; 1x1 - 3x3 depthwise - 1x1 on the second half; concatenate and shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.split = channels // 2
        c = self.split
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, :self.split], x[:, self.split:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([x1, out], 1), 2)


class ShuffleV2DownUnit(nn.Module):
    """Two stride-2 branches (3x3 depthwise - 1x1, and 1x1 - 3x3 depthwise - 1x1); concatenate and shuffle."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        out2 = F.relu(self.bn3(self.conv3(x)))
        out2 = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(out2)))))
        return channel_shuffle(torch.cat([out1, out2], 1), 2)


@MODELS.register_module()
class CIFARShuffleNetV2(BaseBackbone):
    """CRD-style CIFAR ShuffleNetV2 (``ShuffleV2``: ``net_size=1``).

    Args:
        net_size: a key of :data:`V2_ARCHS` (0.2, 0.3, 0.5, 1, 1.5, 2).
        out_indices: which stages to return: 0-2 the three stages, 3 the final 1x1 conv + BN + ReLU; 3 by default.
        in_channels: input image channels.
        init_cfg: MMEngine initialisation config.

    Returns (forward):
        A tuple of (N, C_i, H_i, W_i) stage outputs, one per ``out_indices``; ``C = (116, 232, 464, 1024)`` for
        ``net_size=1``.
    """

    def __init__(self, net_size: float = 1, out_indices: Sequence[int] = (3, ), in_channels: int = 3,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if net_size not in V2_ARCHS:
            raise KeyError(f'unknown CIFARShuffleNetV2 net_size {net_size!r}; choose one of {sorted(V2_ARCHS)}')
        stage_channels, num_units = V2_ARCHS[net_size]
        self.stage_channels = tuple(stage_channels)
        self.out_indices = tuple(out_indices)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        layers, channels = [], 24
        for out_channels, n in zip(stage_channels[:3], num_units):
            layers.append(nn.Sequential(ShuffleV2DownUnit(channels, out_channels),
                                        *[ShuffleV2BasicUnit(out_channels) for _ in range(n)]))
            channels = out_channels
        self.layer1, self.layer2, self.layer3 = layers
        self.conv2 = nn.Sequential(nn.Conv2d(channels, stage_channels[3], 1, bias=False),
                                   nn.BatchNorm2d(stage_channels[3]), nn.ReLU())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        return forward_stages(x, (self.layer1, self.layer2, self.layer3, self.conv2), self.out_indices)
