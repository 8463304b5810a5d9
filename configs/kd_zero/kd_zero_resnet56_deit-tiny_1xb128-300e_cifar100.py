# KD-Zero on CIFAR-100, CNN -> ViT: resnet56 -> DeiT-Ti (paper Table 3: 78.25). [P] METHODS.md 2.7: 224 x 224 input,
# 300 epochs, AdamW lr 5e-4, weight decay 0.05; [R] DeiT-style rest: batch 128, 5 warm-up epochs + cosine,
# RandAugment (m9, std 0.5), random erasing 0.25, label smoothing 0.1, drop path 0.1; no Mixup/CutMix (the focal
# calibration needs hard labels).
# [R] Teacher resolution: the paper's teacher is CRD's released 32 px resnet56 (72.34%, converted by
# tools/model_converters/repdistiller_to_mmkd.py); it sees each 224 px student image resized back to 32 px
# (CIFARResNet input_size=32, bilinear), the resolution it was trained at. input_size=None feeds it the 224 px
# images instead (objects 7x larger than in its training: train such a teacher at 224 px first).
# Knowledge: DeiT has no 4-D feature map (its tokens are (B, 197, 192)), so kd_zero_sources define the embedding
# (student cls token, teacher pooled layer3) and the logits only; a search on this pair uses
# search_space.knowledge=('embedding', 'logits'). The [R] default genome (logits, softmax_C, KL, focal, tau 4) is
# inherited from the resnet110 -> resnet20 config.
_base_ = ['./kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/resnet56_cifar100_converted.pth'  # CRD released resnet56 (72.34%), converted
kd_zero_align_always = False
kd_zero_sources = dict(
    _delete_=True,
    embedding=dict(student='backbone', teacher='neck', student_channels=192, teacher_channels=64, data_idx=0),
    logits=dict(student='head.layers.head', teacher='head.fc'),
    labels=dict(student='head.loss_module', data_idx=1))
_bgr_mean = [112.434, 124.070, 129.304]  # CIFAR-100 mean, BGR order, as fill values
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=224, interpolation='bicubic'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
         magnitude_std=0.5, hparams=dict(pad_val=[round(x) for x in _bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02, max_area_ratio=1 / 3,
         fill_color=_bgr_mean, fill_std=[70.418, 65.392, 68.170]),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='Resize', scale=224, interpolation='bicubic'), dict(type='PackInputs')]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    architecture=dict(
        _delete_=True, _scope_='mmpretrain', type='ImageClassifier', data_preprocessor={{_base_.cifar_preprocessor}},
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16, drop_path_rate=0.1),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=100, in_channels=192,
                  loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=.02), dict(type='Constant', layer='LayerNorm', val=1.,
                                                                          bias=0.)]),
    teacher=dict(backbone=dict(arch='resnet56', input_size=32)),  # the base's CIFAR ResNet classifier, at 32 px
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        student_recorders=dict(knowledge=dict(source='head.layers.head'), logits=dict(source='head.layers.head'))))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-5, by_epoch=True, begin=5, end=300)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=5)
