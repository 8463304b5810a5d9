# ACMKD on ImageNet-1k (data/imagenet), as in the paper (Table I): a Swin-T teacher (81.2% top-1) and three
# students of three architecture families: ResNet-50 (CNN), RedNet-50 (involution network, INN), Swin-T
# (Transformer). AdamW lr 1e-3, weight decay 0.05, 300 epochs [P]; batch 32 per GPU on 4 GPUs [R] (METHODS.md C12);
# 5-epoch linear warm-up and cosine decay [R]. Attention similarity on the 4 stage outputs of every network (56/28/14/7
# at 224x224) [R]. The teacher checkpoint is mmpretrain's swin-tiny (download it yourself; nothing is fetched at run
# time): https://download.openmmlab.com/mmclassification/v0/swin-transformer/
#          swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth
#   bash tools/dist_train.sh configs/acmkd/acmkd_swin-t_3students_4xb32-300e_in1k.py 4
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py', '../_base_/default_runtime.py']
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=1000, mean=[123.675, 116.28, 103.53],
                     std=[58.395, 57.12, 57.375], to_rgb=True)
# the base's top-level data_preprocessor has no type (mmpretrain's tools fill it in); the Runner would hand it to the
# algorithm, which takes the students' ClsDataPreprocessor when given none
data_preprocessor = None
_head = dict(type='LinearClsHead', num_classes=1000, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
_swin_t = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'), head=dict(**_head, in_channels=768))
_resnet50 = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='ResNet', depth=50), neck=dict(type='GlobalAveragePooling'),
    head=dict(**_head, in_channels=2048))
_rednet50 = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='RedNet', depth=50), neck=dict(type='GlobalAveragePooling'),
    head=dict(**_head, in_channels=2048))
_cnn_stages = ['backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'backbone.layer4']
_swin_stages = ['backbone.stages.0', 'backbone.stages.1', 'backbone.stages.2', 'backbone.stages.3']
model = dict(
    _scope_='mmrazor',
    type='ACMKDDistill',
    teacher=_swin_t,
    teacher_ckpt='checkpoints/swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth',
    teacher_stages=_swin_stages,
    students=dict(
        resnet50=dict(model=_resnet50, stages=_cnn_stages),
        rednet50=dict(model=_rednet50, stages=_cnn_stages),
        swin_t=dict(model=_swin_t, stages=_swin_stages)),
    input_size=(224, 224),
    tau=1.0, lambda_ce=1.0, lambda_kd=1.0,            # Eqs. 1-3 [P]
    alpha=1.0, beta=1.0,                              # Eq. 9 [R]
    lambda_ssd_ce=1.0, lambda_ssd_kd=1.0,             # Eq. 8 [P]
    ssd_start_epoch=None,                             # n: [R] 10% of the epochs = 30
    ssd_mode='combined', attention='cbam', att_mode='pairwise', att_reduction=16, att_kernel_size=7,
    teacher_attention_epochs=1, dml_weight=0.0)
optim_wrapper = dict(
    constructor='ACMKDOptimWrapperConstructor',
    optim_wrapper=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
        paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0,
                           custom_keys={'.absolute_pos_embed': dict(decay_mult=0.0),
                                        '.relative_position_bias_table': dict(decay_mult=0.0)})))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
# [R] the weakest student is ranked on 1% of the training images (every 100th, 12,812) held out of training
train_dataloader = dict(batch_size=32, dataset=dict(_delete_=True, type='HeldOutSubset', part='train', every=100,
                                                    dataset={{_base_.train_dataloader.dataset}}))
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
val_cfg = dict(type='ACMKDValLoop')
test_cfg = dict(type='ACMKDTestLoop')
custom_hooks = [dict(type='ACMKDHook', metric='accuracy/top1', rank_by='held_out')]
default_hooks = dict(checkpoint=dict(save_best='ensemble.accuracy/top1', rule='greater'))
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=True)
auto_scale_lr = dict(base_batch_size=128)
