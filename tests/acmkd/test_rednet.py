"""RedNet's involution has the parameter layout of the authors' code, so published RedNet checkpoints load fully."""
import torch
from mmcv.cnn import ConvModule
from torch import nn

from mmkd_ext.acmkd.rednet import Involution, RedNet


class AuthorsInvolution(nn.Module):
    """d-li14/involution, cls/mmcls/models/utils/involution_naive.py (the layout of the published checkpoints)."""

    def __init__(self, channels, kernel_size, stride):
        super().__init__()
        self.kernel_size, self.stride, self.channels = kernel_size, stride, channels
        reduction_ratio, self.group_channels = 4, 16
        self.groups = channels // self.group_channels
        self.conv1 = ConvModule(channels, channels // reduction_ratio, 1, conv_cfg=None, norm_cfg=dict(type='BN'),
                                act_cfg=dict(type='ReLU'))
        self.conv2 = ConvModule(channels // reduction_ratio, kernel_size ** 2 * self.groups, 1, stride=1,
                                conv_cfg=None, norm_cfg=None, act_cfg=None)
        if stride > 1:
            self.avgpool = nn.AvgPool2d(stride, stride)
        self.unfold = nn.Unfold(kernel_size, 1, (kernel_size - 1) // 2, stride)

    def forward(self, x):
        weight = self.conv2(self.conv1(x if self.stride == 1 else self.avgpool(x)))
        b, c, h, w = weight.shape
        weight = weight.view(b, self.groups, self.kernel_size ** 2, h, w).unsqueeze(2)
        out = self.unfold(x).view(b, self.groups, self.group_channels, self.kernel_size ** 2, h, w)
        return (weight * out).sum(dim=3).view(b, self.channels, h, w)


def test_involution_loads_the_authors_state_dict_strictly_and_computes_the_same():
    torch.manual_seed(0)
    ref = AuthorsInvolution(32, 7, 2).eval()
    ours = Involution(32, 7, stride=2).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # conv2.conv.weight / conv2.conv.bias
    x = torch.randn(2, 32, 12, 12)
    torch.testing.assert_close(ours(x), ref(x))


def test_involution_still_loads_checkpoints_with_the_old_plain_conv2_keys():
    source = Involution(32, 3).state_dict()
    old = {k.replace('conv2.conv.', 'conv2.'): v for k, v in source.items()}
    target = Involution(32, 3)
    target.load_state_dict(old, strict=True)
    torch.testing.assert_close(target.conv2.conv.weight, source['conv2.conv.weight'])


def test_rednet_kernel_generating_convs_are_conv_modules():
    net = RedNet(depth=26, stem_channels=32, base_channels=16)
    keys = [k for k in net.state_dict() if '.conv2.conv.' in k and 'layer1.0.conv2' in k]
    assert keys == ['layer1.0.conv2.conv2.conv.weight', 'layer1.0.conv2.conv2.conv.bias']
