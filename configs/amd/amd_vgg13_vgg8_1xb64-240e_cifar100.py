# AMD, supp. Table 7 (CNNs, CIFAR-100): VGG13 teacher -> TA (greedy filter pruning of VGG13) -> VGG8.
#   python tools/amd/run.py configs/amd/amd_vgg13_vgg8_1xb64-240e_cifar100.py
# The TA candidates are VGG13s with fewer filters in every conv that feeds another conv (the conv, its BN and the
# next conv's input; Li et al. [17] prune VGG this way), between the teacher and the student's FLOPs
# (VGG8 = 0.34 x VGG13); the fixed VGG8 is then distilled from the selected TA ([R] METHODS.md §1.9).
# Paper: teacher 75.38, student 70.68, KD 72.98, DGKD 74.40, AMD 74.47.
# teacher_ckpt: train a CE-only vgg13 (CIFARVGG) on CIFAR-100 first (CRD recipe).
_base_ = ['../_base_/datasets/cifar100_bs64.py', '../_base_/default_runtime.py']
# CRD-style CIFAR VGGs with BN (mmkd_ext.models), defined here as configs/_base_/models/ has ResNets only.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
_vgg13 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
              backbone=dict(type='CIFARVGG', arch='vgg13'), neck=dict(type='GlobalAveragePooling'),
              head=dict(**_head, in_channels=512))
_vgg8 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
             backbone=dict(type='CIFARVGG', arch='vgg8'), neck=dict(type='GlobalAveragePooling'),
             head=dict(**_head, in_channels=512))
teacher_ckpt = 'checkpoints/vgg13_cifar100.pth'
student_scale = 0.34  # FLOPs(VGG8) / FLOPs(VGG13) = 96.5 M / 285.5 M (MMEngine count, 32 px)
num_candidates = 9
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),  # [P] greedy pruning of Li et al. [17]
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1'),
    final_student=_vgg8,
    # [R] only the last block's output is mimicked: it is the one VGG map whose width pruning keeps (512 in VGG13,
    # its candidates and VGG8); the earlier block outputs of a candidate carry its pruned channels
    final_feature_modules=['backbone.blocks.4'],
    joint_train_cfg=dict(max_epochs=240, val_interval=20),
    final_train_cfg=dict(max_epochs=240, val_interval=20),
    teacher_accuracy=75.38,  # [P] Table 7
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture=_vgg13,
    teacher=_vgg13,
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(input_shape=(3, 32, 32), min_keep=1, scale_tol=0.01),
    importance_file=None,  # set by tools/amd/run.py
    alpha=1.0,
    beta=1.0,
    tau=1.0,
    logit_module='head.fc',
    feature_modules=['backbone.blocks.4'],
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
