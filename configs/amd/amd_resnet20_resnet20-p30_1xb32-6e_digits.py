# AMD on the built-in digits data: resnet20 teacher -> pruned TA -> resnet20 pruned to 30% of its FLOPs.
# Run the whole chain:   python tools/amd/run.py configs/amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py
# (teacher: python tools/train.py configs/kd/resnet20_1xb32-30e_digits.py --work-dir work_dirs/digits_teacher)
# Short CPU schedule: 5 candidates and 6+6 epochs instead of the paper's m = 9 and 100 epochs.
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/digits_teacher/epoch_30.pth'
student_scale = 0.3
num_candidates = 5
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,
    importance=dict(criterion='l1', l1_greedy=True),  # CNN: greedy filter L1 (Li et al.), supp. §7
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1'),
    joint_train_cfg=dict(max_epochs=6, val_interval=6),
    final_train_cfg=dict(max_epochs=6, val_interval=6),
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture={{_base_.digits_teacher}},  # weight-shared network initialised from the teacher
    teacher={{_base_.digits_teacher}},
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(input_shape=(3, 32, 32), min_keep=1, scale_tol=0.01),
    alpha=1.0,  # [P] supp. §5.1
    beta=1.0,  # [R]
    tau=1.0,  # [R]
    logit_module='head.fc',
    feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'])
# [P] AdamW lr 3e-3 (supp. Table 3); [X] weight decay 0.01 without decay on norms/biases, grad clip 1.0
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0), clip_grad=dict(max_norm=1.0))
# [P] cosine_with_restarts with warm-up; [X] 10% linear warm-up, one cosine cycle (HF semantics)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=6),
    dict(type='CosineRestartLR', periods=[54], restart_weights=[1.0], eta_min=0.0, by_epoch=False, begin=6,
         end=60),
]
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=6)
val_cfg = dict(type='mmrazor.AMDCandidatesValLoop')
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='accuracy/top1',
                                     rule='greater'))  # the student's (smallest candidate)
# multi-process runs: one backward per candidate under DDP, rank 0's BN statistics broadcast (mmkd_ext/amd/wrapper.py)
model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True)
