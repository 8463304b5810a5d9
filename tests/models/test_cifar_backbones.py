"""The CRD-benchmark CIFAR backbones: stage shapes on 32 px inputs, parameter counts, unknown archs."""
import pytest
import torch
from mmpretrain.registry import MODELS

import mmkd_ext  # noqa: F401


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """Build in mmpretrain's scope whatever default scope earlier tests (Runners with default_scope='mmrazor') left."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield

# backbone config, (C, H, W) of the default output, parameters of backbone + a 100-class linear head as
# counted from the CRD repository's definitions (RepDistiller models/; CRD Table 1 rounds: 2.2 M, 0.70 M, ...)
CASES = {
    'wrn_40_2': (dict(type='CIFARWideResNet', arch='wrn_40_2'), (128, 8, 8), 2.26e6),
    'wrn_16_2': (dict(type='CIFARWideResNet', arch='wrn_16_2'), (128, 8, 8), 0.70e6),
    'wrn_40_1': (dict(type='CIFARWideResNet', arch='wrn_40_1'), (64, 8, 8), 0.57e6),
    'wrn_16_1': (dict(type='CIFARWideResNet', arch='wrn_16_1'), (64, 8, 8), 0.18e6),
    'vgg8': (dict(type='CIFARVGG', arch='vgg8'), (512, 4, 4), 3.97e6),
    'vgg11': (dict(type='CIFARVGG', arch='vgg11'), (512, 4, 4), 9.28e6),
    'vgg13': (dict(type='CIFARVGG', arch='vgg13'), (512, 4, 4), 9.46e6),
    'vgg16': (dict(type='CIFARVGG', arch='vgg16'), (512, 4, 4), 14.77e6),
    'vgg19': (dict(type='CIFARVGG', arch='vgg19'), (512, 4, 4), 20.09e6),
    'mobilenetv2_x0.5': (dict(type='CIFARMobileNetV2', width_mult=0.5), (1280, 2, 2), 0.81e6),
    'shufflenetv1_g3': (dict(type='CIFARShuffleNetV1', groups=3), (960, 4, 4), 0.95e6),
    'shufflenetv2_1x': (dict(type='CIFARShuffleNetV2', net_size=1), (1024, 4, 4), 1.36e6),
}


@pytest.mark.parametrize('name', list(CASES))
def test_output_shape_and_size(name):
    cfg, shape, params = CASES[name]
    backbone = MODELS.build(cfg)
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(2, 3, 32, 32))
    assert isinstance(outs, tuple) and len(outs) == 1
    assert outs[0].shape == (2, *shape)
    channels = shape[0]
    total = sum(p.numel() for p in backbone.parameters()) + channels * 100 + 100
    assert total == pytest.approx(params, rel=0.03), f'{name}: {total / 1e6:.3f} M parameters'


@pytest.mark.parametrize('cfg, out_indices, shapes', [
    (dict(type='CIFARWideResNet', arch='wrn_16_2'), (0, 1, 2), [(32, 32, 32), (64, 16, 16), (128, 8, 8)]),
    (dict(type='CIFARVGG', arch='vgg8'), (0, 1, 2, 3, 4),
     [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4)]),
    (dict(type='CIFARMobileNetV2'), (1, 3, 6, 7), [(12, 16, 16), (32, 4, 4), (160, 2, 2), (1280, 2, 2)]),
    (dict(type='CIFARShuffleNetV1'), (0, 1, 2), [(240, 16, 16), (480, 8, 8), (960, 4, 4)]),
    (dict(type='CIFARShuffleNetV2'), (0, 1, 2, 3), [(116, 16, 16), (232, 8, 8), (464, 4, 4), (1024, 4, 4)]),
])
def test_out_indices(cfg, out_indices, shapes):
    backbone = MODELS.build(dict(cfg, out_indices=out_indices))
    outs = backbone(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == shapes


def test_wrn_last_stage_is_activated():
    """CRD's final BN + ReLU belongs to the last stage map (non-negative)."""
    outs = MODELS.build(dict(type='CIFARWideResNet', arch='wrn_16_1'))(torch.randn(2, 3, 32, 32))
    assert outs[0].min() >= 0


def test_vgg_pools_block3_for_64px():
    """CRD's vgg.py max-pools after block 3 only for 64 px inputs."""
    outs = MODELS.build(dict(type='CIFARVGG', arch='vgg8'))(torch.randn(1, 3, 64, 64))
    assert outs[0].shape == (1, 512, 4, 4)


@pytest.mark.parametrize('cfg', [
    dict(type='CIFARWideResNet', arch='wrn_28_10'),
    dict(type='CIFARVGG', arch='vgg9'),
    dict(type='CIFARShuffleNetV1', groups=8),
    dict(type='CIFARShuffleNetV2', net_size=3),
])
def test_unknown_arch(cfg):
    with pytest.raises(KeyError, match='unknown'):
        MODELS.build(cfg)


def test_bad_custom_arch():
    with pytest.raises(ValueError, match='6n\\+4'):
        MODELS.build(dict(type='CIFARWideResNet', arch=(18, 2)))
    with pytest.raises(ValueError, match='five blocks'):
        MODELS.build(dict(type='CIFARVGG', arch=((64, ), (128, ))))


def test_resnet_input_size_runs_a_32px_teacher_on_a_resized_copy_of_a_224px_batch():
    """KD-Zero's / VRM's CNN -> ViT pairs: CRD's 32 px resnet56 teacher sees the student's 224 px images at 32 px."""
    import torch.nn.functional as F
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='CIFARResNet', arch='resnet20'))
    resized = MODELS.build(dict(type='CIFARResNet', arch='resnet20', input_size=32))
    resized.load_state_dict(plain.state_dict())  # same parameters: a released checkpoint loads unchanged
    plain.eval()
    resized.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = plain(F.interpolate(x, size=(32, 32), mode='bilinear', align_corners=False))[0]
        assert torch.equal(resized(x)[0], expected) and expected.shape == (2, 64, 8, 8)
        small = torch.randn(2, 3, 32, 32)
        assert torch.equal(resized(small)[0], plain(small)[0])  # already 32 px: untouched


def test_kd_zero_cnn_to_vit_configs_distil_from_crds_resnet56_at_32px():
    import os.path as osp

    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for name in ('kd_zero_resnet56_deit-tiny_1xb128-300e_cifar100.py',
                 'kd_zero_resnet56_t2t-vit-7_1xb128-300e_cifar100.py'):
        model = Config.fromfile(osp.join(root, 'configs', 'kd_zero', name)).model
        assert model.teacher_ckpt == 'checkpoints/crd/resnet56_cifar100_converted.pth', name
        assert dict(model.teacher.backbone) == dict(type='CIFARResNet', arch='resnet56', input_size=32), name
