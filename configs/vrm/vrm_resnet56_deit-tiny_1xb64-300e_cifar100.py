# VRM ConvNet -> ViT on CIFAR-100: ResNet56 teacher (32 px) -> DeiT-Ti student (224 px), paper Table 3
# (baseline 65.08, VRM 79.52). [R] METHODS.md 5.8: the compared works' recipe, 300 epochs, AdamW lr 5e-4 (batch 512,
# scaled linearly), wd 0.05, cosine with 5 warm-up epochs. The teacher sees the batch resized back to 32 px.
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/default_runtime.py'
]
num_classes = 100
# Real view: crop (pad 4) + flip, upsampled to 224 px for the ViT; virtual view: the same + RandAugment (n = 2).
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=224, interpolation='bicubic'),
    dict(type='VRMVirtualView', transforms=[
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
             magnitude_std=0.5, hparams=dict(pad_val=[129, 124, 112], interpolation='bicubic'))]),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='Resize', scale=224, interpolation='bicubic'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

deit_tiny = dict(
    _scope_='mmpretrain', type='ImageClassifier',
    data_preprocessor={{_base_.cifar100_preprocessor}},
    backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16, drop_path_rate=0.1),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=num_classes, in_channels=192,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
model = dict(
    _scope_='mmrazor',
    type='VRMDistill',
    architecture=deit_tiny,
    teacher={{_base_.resnet56}},
    teacher_ckpt='checkpoints/crd/resnet56_cifar100_converted.pth',
    teacher_input_size=32,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.layers.head')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_vrm=dict(type='VRMLoss', alpha=128.0, beta=32.0, percentile=90.0, zsnorm=True, adaptor=True,
                          num_classes=num_classes)),
        loss_forward_mappings=dict(
            loss_vrm=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
# [R] ramp alpha and beta in linearly over the first 20 epoch(s) (mmkd_ext/vrm/hooks.py)
custom_hooks = [dict(type='VRMLossWarmupHook', warmup_epochs=20)]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4 * 64 / 512, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={'.cls_token': dict(decay_mult=0.0),
                                                                              '.pos_embed': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, eta_min=1e-5, by_epoch=True, begin=5, end=300)
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=10)
val_cfg = dict(type='mmrazor.SingleTeacherDistillValLoop')
test_cfg = dict()
