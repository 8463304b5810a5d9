"""RedNet: the involution network ("INN") student of ACMKD (Li et al., "Involution", CVPR 2021).

mmpretrain 1.2.0 has no RedNet (METHODS.md 3.11 assumes it does), so it is defined here and
registered in mmpretrain's registry as ``RedNet``: mmpretrain's ``ResNet`` with the 3x3 convolution
of every bottleneck replaced by a 7x7 involution and the stem's middle convolution replaced by a
3x3 involution, as in the authors' code (d-li14/involution, ``rednet.py``). The involution is the
authors' unfold formulation (their CUDA kernel is a faster implementation of the same operator).
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule, build_norm_layer
from mmpretrain.models.backbones.resnet import Bottleneck, ResNet
from torch import nn

from ..registry import PRETRAIN_MODELS


class Involution(nn.Module):
    """Involution (Li et al., Eq. 4): a per-pixel kernel generated from the pixel, shared over channel groups.

    Args:
        channels: input = output channels.
        kernel_size: K of the K x K involution kernel.
        stride: spatial stride.
        group_channels: channels sharing one kernel (authors: 16); fewer groups when channels are few.
        reduction: bottleneck ratio of the kernel-generating function (authors: 4).
        norm_cfg: normalisation of the kernel-generating function.
    """

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, group_channels: int = 16,
                 reduction: int = 4, norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        self.groups = max(channels // group_channels, 1)
        if channels % self.groups:
            raise ValueError(f'involution channels {channels} must be a multiple of group_channels {group_channels}')
        self.kernel_size, self.stride, self.channels = kernel_size, stride, channels
        self.group_channels = channels // self.groups
        hidden = max(channels // reduction, 1)
        self.conv1 = ConvModule(channels, hidden, 1, norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'))
        # a ConvModule without norm/act as in the authors' involution_naive.py: the published RedNet checkpoints
        # store its weights as conv2.conv.{weight,bias}
        self.conv2 = ConvModule(hidden, kernel_size * kernel_size * self.groups, 1, norm_cfg=None, act_cfg=None)
        self.avgpool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.unfold = nn.Unfold(kernel_size, dilation=1, padding=(kernel_size - 1) // 2, stride=stride)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints of mmkd_ext <= 0.1.0 stored the kernel-generating conv as a plain Conv2d (conv2.weight)
        for name in ('weight', 'bias'):
            old = f'{prefix}conv2.{name}'
            if old in state_dict:
                state_dict[f'{prefix}conv2.conv.{name}'] = state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, H, W). Returns: (B, C, H / stride, W / stride)."""
        weight = self.conv2(self.conv1(self.avgpool(x)))
        b, _, h, w = weight.shape
        k2 = self.kernel_size * self.kernel_size
        weight = weight.view(b, self.groups, 1, k2, h, w)
        patches = self.unfold(x).view(b, self.groups, self.group_channels, k2, h, w)
        return (weight * patches).sum(dim=3).view(b, self.channels, h, w)


class RedBottleneck(Bottleneck):
    """mmpretrain's ResNet bottleneck with a 7x7 involution in place of the 3x3 convolution."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv2 = Involution(self.mid_channels, 7, self.conv2_stride)


@PRETRAIN_MODELS.register_module()
class RedNet(ResNet):
    """RedNet backbone (RedNet-26/38/50/101/152), an mmpretrain ``ResNet`` with involutions.

    Args:
        depth: 26, 38, 50, 101 or 152.
        stem_downsample: ``True`` (ImageNet: stride-2 stem and max pooling) or ``False`` (small
            images such as 32x32: stride-2 stem only).
        **kwargs: mmpretrain ``ResNet`` arguments (``stem_channels``, ``base_channels``,
            ``num_stages``, ``strides``, ``out_indices``, ...).
    """

    arch_settings = {
        26: (RedBottleneck, (1, 2, 4, 1)),
        38: (RedBottleneck, (2, 3, 5, 2)),
        50: (RedBottleneck, (3, 4, 6, 3)),
        101: (RedBottleneck, (3, 4, 23, 3)),
        152: (RedBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, stem_downsample: bool = True, **kwargs) -> None:
        self.stem_downsample = stem_downsample
        kwargs['deep_stem'] = True  # ResNet.forward then runs self.stem, built below
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        half = stem_channels // 2
        self.stem = nn.Sequential(
            ConvModule(in_channels, half, 3, stride=2, padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg),
            Involution(half, 3, 1), build_norm_layer(self.norm_cfg, half)[1], nn.ReLU(inplace=True),
            ConvModule(half, stem_channels, 3, stride=1, padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        self.maxpool = nn.MaxPool2d(3, 2, 1) if self.stem_downsample else nn.Identity()
