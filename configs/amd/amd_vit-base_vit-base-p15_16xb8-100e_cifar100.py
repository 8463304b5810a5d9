# AMD, supp. Tables 1, 2, 5: ViT-Base teacher (fine-tuned on CIFAR-100, 224 px) -> TA -> ViT-Base pruned to 15% FLOPs.
#   python tools/amd/run.py configs/amd/amd_vit-base_vit-base-p15_16xb8-100e_cifar100.py
# Multi-GPU: torchrun --nproc_per_node 16 tools/amd/run.py CONFIG --launcher pytorch
# Paper: teacher 89.33%, AMD (m=9) 80.19% at 2.2x the GPU hours of single-step KD (16x A100-40GB).
_base_ = ['../_base_/datasets/cifar100_bs64.py', '../_base_/default_runtime.py']
teacher_ckpt = 'checkpoints/vit-base-p16_cifar100-224px.pth'  # a ViT-Base fine-tuned on CIFAR-100 (user supplied)
student_scale = 0.15  # [P] 2.64 / 17.6 GFLOPs
num_candidates = 9  # [P] Table 5
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
vit_base = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16, drop_rate=0.1),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=100, in_channels=768,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
# [R] CIFAR at 224 px, batch 128 (16 GPUs x 8), 100 epochs (METHODS.md §1.8)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=224),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='Resize', scale=224), dict(type='PackInputs')]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=32, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
amd = dict(
    student_scale=student_scale,
    num_candidates=num_candidates,
    num_ta=1,  # [P]
    # [R] importance: CE of the teacher, |per-example gradient|, >= 2048 training images, no augmentation
    importance=dict(criterion='gradient', granularity='sample', max_samples=2048,
                    dataloader=dict(batch_size=16, num_workers=4, sampler=dict(type='DefaultSampler', shuffle=True),
                                    dataset=dict(_scope_='mmpretrain', type='CIFAR100', data_root='data/cifar100',
                                                 split='train', pipeline=test_pipeline))),
    selection=dict(rule='lambda_tradeoff', lam=0.2, npsd_threshold=0.2, metric='accuracy/top1'),
    joint_train_cfg=dict(max_epochs=100, val_interval=10),
    final_train_cfg=dict(max_epochs=100, val_interval=10),
    teacher_accuracy=89.33,  # [P] Table 2 (A3: Table 1's 98.01% is the CIFAR-10 teacher)
)
model = dict(
    _scope_='mmrazor',
    type='AMDDistill',
    architecture=vit_base,  # weight-shared network, initialised from the teacher (parameter sharing)
    teacher=vit_base,
    teacher_ckpt=teacher_ckpt,
    student_ckpt='teacher',
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(input_shape=(3, 224, 224), ffn_granularity='neuron', ranking_scope='global', normalise=True,
                min_keep=1, scale_tol=0.005),
    importance_file=None,  # set by tools/amd/run.py (importance stage)
    alpha=1.0,  # [P] §5.1
    beta=1.0,  # [R]
    tau=1.0,  # [R]
    logit_loss='kl',  # 'dkd': supp. Table 4 "w/ L_dkd"
    logit_module='head.layers.head',
    feature_modules=[f'backbone.layers.{i}' for i in range(12)])
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),  # [P] Table 3; [X] wd
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0), clip_grad=dict(max_norm=1.0))  # [X]
param_scheduler = [  # [P] cosine_with_restarts + warm-up; [X] 10% warm-up, one cycle
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineRestartLR', periods=[90], restart_weights=[1.0], eta_min=0.0, by_epoch=True, begin=10, end=100,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=10)
val_cfg = dict(type='mmrazor.AMDCandidatesValLoop')
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='accuracy/top1', rule='greater'))
# multi-process runs: one backward per candidate under DDP, rank 0's BN statistics broadcast (mmkd_ext/amd/wrapper.py)
model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True)
