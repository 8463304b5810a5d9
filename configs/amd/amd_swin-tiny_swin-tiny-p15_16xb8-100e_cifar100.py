# AMD with a Swin Transformer (supp. §1: heads and FFN neurons ranked *per stage* for Swin): Swin-T teacher fine-tuned
# on CIFAR-100 at 224 px -> TA -> Swin-T pruned to 15% FLOPs. Everything else as the ViT-Base config (AdamW 3e-3,
# cosine with restarts + warm-up, m = 9, lambda_tradeoff selection); the supplement reports no Swin numbers.
#   python tools/amd/run.py configs/amd/amd_swin-tiny_swin-tiny-p15_16xb8-100e_cifar100.py
# The exported TA/student are standard mmpretrain SwinTransformers with fewer heads and FFN neurons per block
# (mmkd_ext.amd.export.AMDPrunedBackbone), so they run at their pruned cost.
_base_ = ['./amd_vit-base_vit-base-p15_16xb8-100e_cifar100.py']
teacher_ckpt = 'checkpoints/swin-tiny_cifar100-224px.pth'  # a Swin-T fine-tuned on CIFAR-100 (user supplied)
student_scale = 0.15  # [R] the ViT-Base target (supp. Tables 1, 2); reachable: the solver gets Swin-T to 10%
num_candidates = 9
swin_tiny = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor={{_base_._preprocessor}},
    backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=768,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
amd = dict(student_scale=student_scale, num_candidates=num_candidates)
model = dict(
    architecture=dict(_delete_=True, **swin_tiny),
    teacher=dict(_delete_=True, **swin_tiny),
    teacher_ckpt=teacher_ckpt,
    scales=[round(1 - k * (1 - student_scale) / num_candidates, 10) for k in range(1, num_candidates + 1)],
    pruner=dict(ranking_scope='stage'),  # [P] supp. §1: partial ranking within each stage for Swin
    logit_module='head.fc',
    feature_modules=[f'backbone.stages.{i}' for i in range(4)])
