"""Tiny models of every backbone family AMD prunes (CPU, 32x32 inputs)."""
import pytest
import torch

from mmkd_ext.registry import MODELS

INPUT = (3, 32, 32)


def cifar_resnet(arch='resnet20', num_classes=10):
    return dict(_scope_='mmpretrain', type='ImageClassifier', backbone=dict(type='CIFARResNet', arch=arch),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64))


def tiny_vit():
    return dict(_scope_='mmpretrain', type='ImageClassifier',
                backbone=dict(type='VisionTransformer', img_size=32, patch_size=8,
                              arch=dict(embed_dims=32, num_layers=2, num_heads=4, feedforward_channels=64)),
                neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=32))


def tiny_swin():
    return dict(_scope_='mmpretrain', type='ImageClassifier',
                backbone=dict(type='SwinTransformer', img_size=32, window_size=4, out_indices=(1, ),
                              arch=dict(embed_dims=16, depths=[2, 2], num_heads=[2, 4])),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=10, in_channels=32))


def tiny_bottleneck_resnet():
    return dict(_scope_='mmpretrain', type='ImageClassifier',
                backbone=dict(type='ResNetV1c', depth=50, base_channels=8, stem_channels=8, out_indices=(3, )),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=10, in_channels=256))


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


@pytest.fixture
def images():
    return torch.randn(2, *INPUT, generator=torch.Generator().manual_seed(1))


@pytest.fixture(autouse=True)
def one_torch_thread(single_torch_thread):
    """Every AMD test runs with one intra-op thread (tests/conftest.py)."""
