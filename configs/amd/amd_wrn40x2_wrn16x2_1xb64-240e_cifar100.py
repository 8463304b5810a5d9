# AMD, supp. Table 7 (CNNs, CIFAR-100): WRN-40-2 teacher -> TA (greedy filter pruning of WRN-40-2) -> WRN-16-2.
#   python tools/amd/run.py configs/amd/amd_wrn40x2_wrn16x2_1xb64-240e_cifar100.py
# The TA candidates are WRN-40-2s whose pre-activation blocks lose inner channels (conv1 -> bn2 -> conv2), between
# the teacher and the student's FLOPs (WRN-16-2 = 0.31 x WRN-40-2); the fixed WRN-16-2 is then distilled from the
# selected TA ([R] METHODS.md §1.9). Paper: teacher 76.46, student 73.64, KD 74.92, DGKD 76.24, AMD 76.06.
# teacher_ckpt: train a CE-only wrn_40_2 (CIFARWideResNet) on CIFAR-100 first (CRD recipe).
_base_ = ['../_base_/datasets/cifar100_bs64.py', '../_base_/default_runtime.py']
# CRD-style CIFAR Wide ResNets (mmkd_ext.models), defined here as configs/_base_/models/ has ResNets only.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
_wrn40x2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARWideResNet', arch='wrn_40_2'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=128))
_wrn16x2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARWideResNet', arch='wrn_16_2'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=128))
teacher_ckpt = 'checkpoints/wrn40x2_cifar100.pth'
student_scale = 0.31  # FLOPs(WRN-16-2) / FLOPs(WRN-40-2) = 101.6 M / 329.0 M (MMEngine count, 32 px)
num_candidates = 9
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),  # [P] greedy pruning of Li et al. [17]
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1'),
    final_student=_wrn16x2,
    # stage outputs are residual widths (32, 64, 128) in both networks, untouched by pruning: no connector
    final_feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],
    joint_train_cfg=dict(max_epochs=240, val_interval=20),
    final_train_cfg=dict(max_epochs=240, val_interval=20),
    teacher_accuracy=76.46,  # [P] Table 7
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture=_wrn40x2,
    teacher=_wrn40x2,
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
