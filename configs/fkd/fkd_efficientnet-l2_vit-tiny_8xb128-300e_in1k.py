# FKD ViT-T (DeiT-tiny architecture) from scratch on ImageNet-1k, paper Table 13 (FKD column): 300 epochs, 1024 crops
# per step, AdamW lr 0.002, wd 0.05, cosine, 5 warm-up epochs, stochastic depth 0.1; no label smoothing, dropout,
# repeated aug, RandAugment, Mixup, CutMix or random erasing. Paper: 75.2% top-1 (Table 5), 0.15x DeiT-KD's cost.
_base_ = ['./fkd_efficientnet-l2_resnet50_8xb128-300e_in1k.py']
# the base's top-level data_preprocessor has no type (mmpretrain's ImageClassifier fills it in); the Runner would hand
# it to the algorithm, which uses the student's ClsDataPreprocessor when given none
data_preprocessor = None
model = dict(
    architecture=dict(
        _delete_=True, _scope_='mmpretrain', type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=1000, mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], to_rgb=True),
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16, drop_path_rate=0.1),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=192, topk=(1, 5),
                  loss=dict(type='CrossEntropyLoss', use_soft=True)),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02), dict(type='Constant', layer='LayerNorm', val=1.,
                                                                           bias=0.)]))
train_dataloader = dict(
    dataset=dict(pipeline=[dict(type='FKDReplayCrop', scale=224, interpolation='bilinear'), dict(type='PackInputs')]))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, by_epoch=True, begin=5, end=300, eta_min=1e-5),
]
