# AMD, supp. Table 7 (CNNs, CIFAR-100): ResNet56 teacher -> TA (greedy filter pruning of ResNet56) -> ResNet20.
#   python tools/amd/run.py configs/amd/amd_resnet56_resnet20_1xb64-240e_cifar100.py
# The TA candidates are pruned ResNet56s between the teacher and the student's FLOPs (ResNet20 = 0.33 x ResNet56);
# the fixed ResNet20 is then distilled from the selected TA ([R] METHODS.md §1.9). Paper: 73.44 -> 71.95 (AMD).
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/default_runtime.py'
]
teacher_ckpt = 'checkpoints/crd/resnet56_cifar100_converted.pth'  # CRD released resnet56 (72.34%), converted
student_scale = 0.33  # FLOPs(ResNet20) / FLOPs(ResNet56) = 41.2 M / 125.7 M
num_candidates = 9
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),  # [P] greedy pruning of Li et al. [17]
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1'),
    final_student={{_base_.resnet20}},
    final_feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],  # same widths: no connector
    joint_train_cfg=dict(max_epochs=240, val_interval=20),
    final_train_cfg=dict(max_epochs=240, val_interval=20),
    teacher_accuracy=73.44,  # [P] Table 7
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture={{_base_.resnet56}},
    teacher={{_base_.resnet56}},
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(input_shape=(3, 32, 32), min_keep=1, scale_tol=0.01),
    importance_file=None,  # set by tools/amd/run.py
    alpha=1.0,
    beta=1.0,
    tau=1.0,
    logit_module='head.fc',
    feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],
    private_bn_stats=True)  # [R] per-candidate BN statistics (mmkd_ext/amd/bn_stats.py)
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),  # [P] AdamW for all methods
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=24, convert_to_iter_based=True),
    dict(type='CosineRestartLR', periods=[216], restart_weights=[1.0], eta_min=0.0, by_epoch=True, begin=24,
         end=240, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=20)
val_cfg = dict(type='mmrazor.AMDCandidatesValLoop')
test_cfg = dict()
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='accuracy/top1', rule='greater'))
# multi-process runs: one backward per candidate under DDP, rank 0's BN statistics broadcast (mmkd_ext/amd/wrapper.py)
model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True)
