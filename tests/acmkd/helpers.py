"""A tiny ACMKD set-up for the tests: a resnet14 teacher, a resnet8 and a ViT student on 16x16 inputs."""
import os.path as osp

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_PRE = dict(type='ClsDataPreprocessor', num_classes=4, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False)


def cnn(arch='resnet8', num_classes=4):
    return dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_PRE,
                backbone=dict(type='CIFARResNet', arch=arch), neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64))


def vit(num_classes=4):
    return dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_PRE,
                backbone=dict(type='VisionTransformer', img_size=16, patch_size=4,
                              arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
                head=dict(type='VisionTransformerClsHead', num_classes=num_classes, in_channels=32))


def tiny_cfg(**overrides):
    cfg = dict(
        type='ACMKDDistill', teacher=cnn('resnet14'), teacher_stages=['backbone.layer2', 'backbone.layer3'],
        students=dict(cnn=dict(model=cnn(), stages=['backbone.layer2', 'backbone.layer3']),
                      vit=dict(model=vit(), stages=['backbone.layers.0', 'backbone.layers.1'])),
        input_size=(16, 16), att_reduction=4, att_kernel_size=3, ssd_start_epoch=1)
    cfg.update(overrides)
    return cfg


def batch(n=8, num_classes=4, seed=0):
    """A raw dataloader batch of uint8 16x16 images with labels 0..num_classes-1."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(n)])
