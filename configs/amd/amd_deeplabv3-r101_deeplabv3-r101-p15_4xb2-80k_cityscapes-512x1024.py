# AMD, supp. Table 8: DeepLabV3-R101 teacher -> TA -> DeepLabV3 whose ResNet101 is pruned to 15% of its FLOPs.
#   python tools/amd/run.py configs/amd/amd_deeplabv3-r101_deeplabv3-r101-p15_4xb2-80k_cityscapes-512x1024.py
# Paper: teacher 78.07 mIoU, AMD 77.23 (vs DIST 77.10, CIRKD 76.38 with a ResNet18 student).
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
teacher_ckpt = 'checkpoints/deeplabv3_r101-d8_512x1024_80k_cityscapes_20200606_113503-9e428899.pth'  # mmseg zoo
student_scale = 0.15
num_candidates = 9
_norm = dict(type='SyncBN', requires_grad=True)
deeplabv3_r101 = dict(
    _scope_='mmseg', type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 1024)),
    backbone=dict(type='ResNetV1c', depth=101, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=_norm, norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='ASPPHead', in_channels=2048, in_index=3, channels=512, dilations=(1, 12, 24, 36),
                     dropout_ratio=0.1, num_classes=19, norm_cfg=_norm, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels=1024, in_index=2, channels=256, num_convs=1, concat_input=False,
                        dropout_ratio=0.1, num_classes=19, norm_cfg=_norm, align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),  # [R] greedy filter pruning of ResNet101 (METHODS.md §1.9)
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='mIoU'),
    joint_train_cfg=dict(max_iters=80000, val_interval=8000),
    final_train_cfg=dict(max_iters=80000, val_interval=8000),
    teacher_accuracy=78.07,  # [P] Table 8
)
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='AMDDistill',
    architecture=deeplabv3_r101,
    teacher=deeplabv3_r101,
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    # [R] "15% ResNet101": the scale is measured on the backbone (the ASPP head is not pruned)
    # SyncBN over 4 GPUs: sliced candidates would not synchronise their BN statistics, so masked candidates
    pruner=dict(input_shape=(3, 512, 1024), flops_scope='backbone', min_keep=1, scale_tol=0.01,
                candidate_mode='masked'),
    importance_file=None,  # set by tools/amd/run.py
    alpha=1.0,
    beta=1.0,
    tau=1.0,  # [R] pixel-wise KL averaged over pixels (METHODS.md §1.9)
    logit_module='decode_head.conv_seg',
    feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'backbone.layer4'])
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.01),  # [R] see README
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=8000),
    dict(type='CosineRestartLR', periods=[72000], restart_weights=[1.0], eta_min=0.0, by_epoch=False, begin=8000,
         end=80000),
]
val_cfg = dict(_delete_=True, type='mmrazor.AMDCandidatesValLoop')
default_hooks = dict(visualization=dict(_delete_=True, type='mmseg.SegVisualizationHook'),
                     checkpoint=dict(save_best='mIoU', rule='greater'))  # the student's (smallest candidate)
# multi-process runs: one backward per candidate under DDP, rank 0's BN statistics broadcast (mmkd_ext/amd/wrapper.py)
# find_unused_parameters lives here: MMEngine reads the top-level key only without a model_wrapper_cfg
model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True, find_unused_parameters=True)
