"""Attention maps (Eq. 4), token-to-map reshape and alignment, on hand-computed tensors."""
import math

import pytest
import torch
from torch import nn

from mmkd_ext.acmkd.attention import (
    CBAM,
    align_channel_attention,
    align_spatial_attention,
    cbam_channel_attention,
    cbam_spatial_attention,
    parameter_free_attention,
    to_feature_map,
    tokens_to_map,
)


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_tokens_to_map_drops_class_token_and_lays_out_row_major():
    tokens = torch.arange(10.).reshape(1, 5, 2)  # 1 cls token + 2x2 patches, 2 channels
    fmap = tokens_to_map(tokens)
    assert fmap.shape == (1, 2, 2, 2)
    # patch k = 1 + 2*i + j holds channels (2k, 2k+1)
    assert fmap[0, 0].tolist() == [[2., 4.], [6., 8.]]
    assert fmap[0, 1].tolist() == [[3., 5.], [7., 9.]]


def test_tokens_to_map_uses_given_rectangular_grid():
    tokens = torch.arange(6.).reshape(1, 6, 1)
    assert tokens_to_map(tokens, hw_shape=(2, 3))[0, 0].tolist() == [[0., 1., 2.], [3., 4., 5.]]


def test_to_feature_map_reads_swin_stage_tuple():
    tokens = torch.randn(2, 6, 4)
    fmap = to_feature_map((tokens, (3, 2)))
    assert fmap.shape == (2, 4, 3, 2)
    assert torch.equal(fmap[:, :, 1, 0], tokens[:, 2])


def test_to_feature_map_keeps_cnn_map():
    x = torch.randn(2, 3, 4, 4)
    assert to_feature_map(x) is x


def test_tokens_to_map_rejects_non_square_token_count():
    with pytest.raises(ValueError, match='square'):
        tokens_to_map(torch.zeros(1, 7, 2))


def test_align_channel_attention_interpolates_linearly():
    att = torch.tensor([[0., 1.]])
    # align_corners=False: source positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    assert align_channel_attention(att, 4).tolist() == [[0., 0.25, 0.75, 1.]]


def test_align_spatial_attention_resizes_bilinearly():
    att = torch.tensor([[0., 1., 2., 3.]])  # 2x2
    assert align_spatial_attention(att, (2, 2), (1, 1)).tolist() == [[1.5]]
    up = align_spatial_attention(torch.tensor([[3.]]), (1, 1), (2, 2))
    assert up.tolist() == [[3., 3., 3., 3.]]
    assert align_spatial_attention(att, (2, 2), (2, 2)) is att


def test_cbam_channel_attention_sums_avg_and_max_paths():
    feat = torch.tensor([[[[1., 3.]], [[-1., 1.]]]])  # (1, 2, 1, 2)
    att = cbam_channel_attention(feat, nn.Identity())  # avg (2, 0) + max (3, 1)
    assert torch.allclose(att, torch.tensor([[sig(5.), sig(1.)]]))


def test_cbam_spatial_attention_convolves_mean_and_max_over_channels():
    feat = torch.tensor([[[[1., 3.]], [[-1., 1.]]]])
    conv = nn.Conv2d(2, 1, 1, bias=False)
    conv.weight.data.fill_(1.)  # mean_c (0, 2) + max_c (1, 3)
    att = cbam_spatial_attention(feat, conv)
    assert torch.allclose(att, torch.tensor([[[[sig(1.), sig(5.)]]]]))


def test_cbam_refines_with_channel_then_spatial_attention():
    torch.manual_seed(0)
    cbam = CBAM(4, reduction=2, kernel_size=3)
    feat = torch.randn(2, 4, 3, 3)
    maps = cbam(feat)
    assert maps.channel.shape == (2, 4) and maps.spatial.shape == (2, 9) and maps.spatial_hw == (3, 3)
    f1 = maps.channel[:, :, None, None] * feat
    expected = maps.spatial.reshape(2, 1, 3, 3) * f1
    assert torch.allclose(maps.refined, expected)


def test_cbam_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match='built for 4 channels'):
        CBAM(4)(torch.randn(1, 3, 2, 2))


def test_parameter_free_attention_values():
    feat = torch.tensor([[[[1., -3.]], [[2., 0.]]]])  # (1, 2, 1, 2)
    channel, spatial = parameter_free_attention(feat)
    e2, e1 = math.exp(2.), math.exp(1.)  # mean |F| per channel: 2, 1
    assert torch.allclose(channel, torch.tensor([[e2 / (e2 + e1), e1 / (e2 + e1)]]))
    assert torch.allclose(spatial, torch.tensor([[2.5, 4.5]]))  # mean_c F^2
