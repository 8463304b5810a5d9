# ACMKD on the built-in digits data: a resnet20 teacher and three students of three architecture
# families, as in the paper (CNN, involution network, Transformer), sized for CPU and 32x32 images:
# resnet8 (CNN), RedNet-26 (3 stages, 8 base channels; INN), a 4-layer ViT with 4x4 patches (Transformer).
# Teacher: python tools/train.py configs/kd/resnet20_1xb32-30e_digits.py --work-dir work_dirs/digits_teacher
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/digits_teacher/epoch_30.pth'
_preprocessor = {{_base_.digits_student.data_preprocessor}}
_rednet = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='RedNet', depth=26, stem_channels=16, base_channels=8, num_stages=3, strides=(1, 2, 2),
                  dilations=(1, 1, 1), out_indices=(2, ), stem_downsample=True),  # 8x8 maps: the digits' own size
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128))
_vit = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='VisionTransformer', arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                                      feedforward_channels=128),
                  img_size=32, patch_size=4, drop_rate=0.0),
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=64))
model = dict(
    _scope_='mmrazor',
    type='ACMKDDistill',
    teacher={{_base_.digits_teacher}},
    teacher_ckpt=teacher_ckpt,
    teacher_stages=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],
    students=dict(
        resnet8=dict(model={{_base_.digits_student}},
                     stages=['backbone.layer1', 'backbone.layer2', 'backbone.layer3']),
        rednet=dict(model=_rednet, stages=['backbone.layer1', 'backbone.layer2', 'backbone.layer3']),
        vit=dict(model=_vit, stages=['backbone.layers.1', 'backbone.layers.2', 'backbone.layers.3'])),
    input_size=(32, 32),
    tau=1.0, lambda_ce=1.0, lambda_kd=1.0,            # Eqs. 1-3 [P]
    alpha=1.0, beta=1.0,                              # Eq. 9 [R]
    lambda_ssd_ce=1.0, lambda_ssd_kd=1.0,             # Eq. 8 [P]
    ssd_start_epoch=None,                             # n: [R] 10% of the epochs
    ssd_mode='combined', attention='cbam', att_mode='pairwise', teacher_attention_epochs=1, dml_weight=0.0)
# one optimizer per student (same template); the ViT uses AdamW, which small ViTs need
optim_wrapper = dict(
    _delete_=True,
    constructor='ACMKDOptimWrapperConstructor',
    optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4)),
    overrides=dict(vit=dict(optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=0.05))))
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
val_cfg = dict(_delete_=True, type='ACMKDValLoop')
test_cfg = dict(_delete_=True, type='ACMKDTestLoop')
# [R] the weakest student is ranked on 1 in 10 training images held out of training (30 of 300), not on val
train_dataloader = dict(dataset=dict(_delete_=True, type='HeldOutSubset', part='train', every=10,
                                     dataset={{_base_.train_dataloader.dataset}}))
custom_hooks = [dict(type='ACMKDHook', metric='accuracy/top1', rank_by='held_out')]
default_hooks = dict(checkpoint=dict(save_best='ensemble.accuracy/top1', rule='greater'))
# tools/dist_train.sh: one DDP per student, so each student's optimizer steps only its own parameters
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=True)
