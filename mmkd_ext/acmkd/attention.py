"""Attention maps of ACMKD (paper Eq. 4) and their alignment across architectures.

ACMKD compares channel and spatial attention maps of the teacher and of every student, stage by
stage (METHODS.md 3.4). The maps come from CBAM-style modules (Woo et al., ECCV 2018; the paper's
reference [25] uses the same) or, as an option, from parameter-free statistics (AT-style):

    F'  = A^c(F) * F                           (Eq. 4, first line)
    F'' = A^s(F') * F'                         (Eq. 4, second line; printed "* F", [R] CBAM uses F')
    A^c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))         [R] CBAM defaults, r = 16
    A^s(F) = sigmoid(Conv7x7([Mean_c(F); Max_c(F)]))             [R] CBAM defaults

Transformer stages give tokens; :func:`to_feature_map` turns them into (B, C, H, W) maps. Teacher
and student maps differ in length (channels) and size (H x W); :func:`align_channel_attention` and
:func:`align_spatial_attention` bring a student's maps to the teacher's ([R] METHODS.md 3.4).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

Shape2d = Tuple[int, int]


class AttentionMaps(NamedTuple):
    """The two attention maps of one feature map, and the refined feature ``F''``.

    Attributes:
        channel: (B, C) channel attention ``A^c(F)``.
        spatial: (B, H*W) spatial attention ``A^s(F')``, flattened row-major.
        spatial_hw: (H, W) of the spatial map.
        refined: (B, C, H, W) ``F''`` (CBAM modules) or ``None`` (parameter-free maps).
    """
    channel: torch.Tensor
    spatial: torch.Tensor
    spatial_hw: Shape2d
    refined: Optional[torch.Tensor]


# ----------------------------------------------------------------------------- token -> map


def _square_side(n: int) -> Optional[int]:
    side = math.isqrt(n)
    return side if side * side == n else None


def tokens_to_map(tokens: torch.Tensor, hw_shape: Optional[Sequence[int]] = None,
                  num_extra_tokens: Optional[int] = None) -> torch.Tensor:
    """Reshape transformer tokens (B, N, C) to a feature map (B, C, H, W) (METHODS.md 3.4).

    Args:
        tokens: (B, N, C) tokens; the first ``num_extra_tokens`` (class/distillation tokens) are dropped.
        hw_shape: (H, W) of the patch grid; inferred as a square when ``None``.
        num_extra_tokens: leading non-patch tokens. ``None`` infers it: the smallest k in {0, 1, 2}
            that leaves ``H*W`` patch tokens (a perfect square when ``hw_shape`` is not given).

    Returns:
        (B, C, H, W) map; patch tokens are laid out row-major, as in mmpretrain's ViT and Swin.
    """
    if tokens.dim() != 3:
        raise ValueError(f'tokens_to_map expects (B, N, C) tokens, got shape {tuple(tokens.shape)}')
    b, n, c = tokens.shape
    if num_extra_tokens is None:
        for k in (0, 1, 2):
            rest = n - k
            if (hw_shape is not None and rest == hw_shape[0] * hw_shape[1]) or (
                    hw_shape is None and rest > 0 and _square_side(rest) is not None):
                num_extra_tokens = k
                break
        else:
            raise ValueError(f'cannot reshape {n} tokens to a map: neither {n}, {n - 1} nor {n - 2} patch tokens '
                             'form a square grid; give hw_shape (and num_extra_tokens) for this stage')
    patches = tokens[:, num_extra_tokens:]
    if hw_shape is None:
        side = _square_side(patches.shape[1])
        if side is None:
            raise ValueError(f'{patches.shape[1]} patch tokens are not a square grid; give hw_shape for this stage')
        hw_shape = (side, side)
    h, w = int(hw_shape[0]), int(hw_shape[1])
    if patches.shape[1] != h * w:
        raise ValueError(f'{patches.shape[1]} patch tokens do not fill a {h}x{w} grid '
                         f'(tokens {tuple(tokens.shape)}, num_extra_tokens={num_extra_tokens})')
    return patches.transpose(1, 2).reshape(b, c, h, w)


def to_feature_map(output: Union[torch.Tensor, tuple, list], num_extra_tokens: Optional[int] = None) -> torch.Tensor:
    """A recorded stage output as a (B, C, H, W) map, whatever the architecture gives.

    Handles CNN maps (B, C, H, W); ViT tokens (B, N, C); mmpretrain Swin stage outputs
    ``(tokens, (H, W))``; and tuples/lists whose first element is one of these.

    Args:
        output: what a ``ModuleOutputs`` recorder captured for a stage.
        num_extra_tokens: passed to :func:`tokens_to_map` for token outputs.

    Returns:
        (B, C, H, W) tensor.
    """
    if isinstance(output, (tuple, list)):
        if len(output) == 2 and torch.is_tensor(output[0]) and output[0].dim() == 3 and isinstance(
                output[1], (tuple, list, torch.Size)) and len(output[1]) == 2:
            return tokens_to_map(output[0], output[1], num_extra_tokens)
        if not output:
            raise ValueError('a stage produced an empty tuple; record another module')
        return to_feature_map(output[0], num_extra_tokens)
    if not torch.is_tensor(output):
        raise TypeError(f'a stage output must be a tensor or tuple of tensors, got {type(output).__name__}')
    if output.dim() == 4:
        return output
    if output.dim() == 3:
        return tokens_to_map(output, None, num_extra_tokens)
    raise ValueError(f'a stage output of shape {tuple(output.shape)} is neither a (B, C, H, W) map nor (B, N, C) '
                     'tokens; record a convolution or transformer stage')


# ----------------------------------------------------------------------------- alignment


def align_channel_attention(att: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly interpolate a (B, C_s) channel-attention vector to ``length`` (teacher C_T) entries.

    [R] METHODS.md 3.4 ("channel-dimension mismatch"); identity when the lengths agree.

    Args:
        att: (B, C_s).
        length: target length C_T.

    Returns:
        (B, C_T).
    """
    if att.shape[1] == length:
        return att
    return F.interpolate(att[:, None, :], size=length, mode='linear', align_corners=False)[:, 0, :]


def align_spatial_attention(att: torch.Tensor, hw: Shape2d, size: Shape2d) -> torch.Tensor:
    """Bilinearly resize a flattened (B, H*W) spatial map to ``size`` (teacher H_T x W_T), flattened.

    [R] METHODS.md 3.4; identity when the sizes agree.

    Args:
        att: (B, H*W) spatial attention, row-major.
        hw: (H, W) of ``att``.
        size: target (H_T, W_T).

    Returns:
        (B, H_T*W_T).
    """
    if tuple(hw) == tuple(size):
        return att
    b = att.shape[0]
    grid = att.reshape(b, 1, hw[0], hw[1])
    return F.interpolate(grid, size=tuple(size), mode='bilinear', align_corners=False).reshape(b, -1)


# ----------------------------------------------------------------------------- the maps (Eq. 4)


def cbam_channel_attention(feat: torch.Tensor, mlp: nn.Module) -> torch.Tensor:
    """``A^c(F) = sigmoid(MLP(AvgPool(F)) + MLP(MaxPool(F)))`` (CBAM, paper Eq. 4).

    Args:
        feat: (B, C, H, W).
        mlp: maps (B, C) to (B, C), shared by both pooled vectors.

    Returns:
        (B, C) attention in (0, 1).
    """
    return torch.sigmoid(mlp(feat.mean(dim=(2, 3))) + mlp(feat.amax(dim=(2, 3))))


def cbam_spatial_attention(feat: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """``A^s(F) = sigmoid(Conv([Mean_c(F); Max_c(F)]))`` (CBAM, paper Eq. 4).

    Args:
        feat: (B, C, H, W).
        conv: 2 -> 1 channel convolution keeping H x W.

    Returns:
        (B, 1, H, W) attention in (0, 1).
    """
    pooled = torch.cat([feat.mean(dim=1, keepdim=True), feat.amax(dim=1, keepdim=True)], dim=1)
    return torch.sigmoid(conv(pooled))


def parameter_free_attention(feat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Option ``attention='parameter_free'`` (METHODS.md 3.4): ``softmax(mean_hw |F|)`` and ``mean_c F^2``.

    Args:
        feat: (B, C, H, W).

    Returns:
        (channel (B, C), spatial (B, H*W)).
    """
    channel = torch.softmax(feat.abs().mean(dim=(2, 3)), dim=1)
    spatial = feat.pow(2).mean(dim=1).flatten(1)
    return channel, spatial


class CBAM(nn.Module):
    """CBAM attention on one stage: channel then spatial attention (paper Eq. 4).

    Args:
        channels: C of the stage output.
        reduction: MLP bottleneck ratio r (C -> C/r -> C); [R] 16 (CBAM).
        kernel_size: spatial-attention convolution size; [R] 7 (CBAM).
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.channels = channels

    def forward(self, feat: torch.Tensor) -> AttentionMaps:
        """Args: feat (B, C, H, W). Returns: :class:`AttentionMaps` with ``refined`` = F''."""
        if feat.shape[1] != self.channels:
            raise ValueError(f'CBAM built for {self.channels} channels got a map of shape {tuple(feat.shape)}; '
                             'check the stage names and channels of this network')
        channel = cbam_channel_attention(feat, self.mlp)
        refined = channel[:, :, None, None] * feat  # F'
        spatial = cbam_spatial_attention(refined, self.conv)  # A^s(F')
        refined = spatial * refined  # F'' = A^s(F') * F'  ([R] CBAM; the paper prints * F)
        return AttentionMaps(channel, spatial.flatten(1), tuple(feat.shape[2:]), refined)


class ParameterFreeAttention(nn.Module):
    """Attention maps without learnable parameters (option ``attention='parameter_free'``)."""

    def forward(self, feat: torch.Tensor) -> AttentionMaps:
        """Args: feat (B, C, H, W). Returns: :class:`AttentionMaps` (``refined`` is ``None``)."""
        channel, spatial = parameter_free_attention(feat)
        return AttentionMaps(channel, spatial, tuple(feat.shape[2:]), None)


def build_attention(kind: str, channels: int, reduction: int = 16, kernel_size: int = 7) -> nn.Module:
    """An attention module: ``'cbam'`` ([R] default) or ``'parameter_free'``.

    Args:
        kind: ``'cbam'`` or ``'parameter_free'``.
        channels: stage channels (used by CBAM).
        reduction: CBAM MLP ratio.
        kernel_size: CBAM spatial kernel.

    Returns:
        The module; its forward maps (B, C, H, W) to :class:`AttentionMaps`.
    """
    if kind == 'cbam':
        return CBAM(channels, reduction, kernel_size)
    if kind == 'parameter_free':
        return ParameterFreeAttention()
    raise ValueError(f"attention={kind!r} is unknown; use 'cbam' or 'parameter_free'")
