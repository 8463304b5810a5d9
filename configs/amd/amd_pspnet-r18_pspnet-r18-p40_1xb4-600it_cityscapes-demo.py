# AMD segmentation demo (the Table 8 recipe at toy size): PSPNet-R18 teacher -> TA -> PSPNet whose ResNetV1c-18 is
# pruned to 40% of its FLOPs, on the built-in Cityscapes-layout scenes (python tools/misc/make_demo_data.py --tasks seg).
#   python tools/train.py configs/amd/pspnet_r18_1xb4-600it_cityscapes-demo.py --work-dir work_dirs/amd_seg_teacher
#   python tools/amd/run.py configs/amd/amd_pspnet-r18_pspnet-r18-p40_1xb4-600it_cityscapes-demo.py
_base_ = [
    '../_base_/models/cityscapes_demo_segmentors.py', '../_base_/datasets/cityscapes_demo_bs4.py',
    '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/amd_seg_teacher/iter_600.pth'
student_scale = 0.4
num_candidates = 3
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='mIoU'),
    joint_train_cfg=dict(max_iters=300, val_interval=300),
    final_train_cfg=dict(max_iters=300, val_interval=300),
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture={{_base_.cityscapes_teacher}},
    teacher={{_base_.cityscapes_teacher}},
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(input_shape=(3, 128, 256), flops_scope='backbone', min_keep=1, scale_tol=0.01),
    alpha=1.0,
    beta=1.0,
    tau=1.0,
    logit_module='decode_head.conv_seg',
    feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'backbone.layer4'])
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-4, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='CosineRestartLR', periods=[270], restart_weights=[1.0], eta_min=0.0, by_epoch=False, begin=30,
         end=300),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
val_cfg = dict(type='mmrazor.AMDCandidatesValLoop')
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=1,
                                     save_best='mIoU', rule='greater'))
log_processor = dict(by_epoch=False)
# multi-process runs: one backward per candidate under DDP, rank 0's BN statistics broadcast (mmkd_ext/amd/wrapper.py)
# find_unused_parameters lives here: MMEngine reads the top-level key only without a model_wrapper_cfg
model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True, find_unused_parameters=True)
