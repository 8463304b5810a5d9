# ACMKD on CIFAR-100 (data/cifar100), as in the paper (Table II): Swin-T teacher (92.59% top-1), students
# ResNet-50 / RedNet-50 / Swin-T. Batch 64, 200 epochs, lr 0.1 x0.1 at epochs 100 and 150 [P]; SGD momentum 0.9,
# weight decay 5e-4 [R]. Images are upsampled to 224x224 and the networks start from ImageNet weights [R]
# (METHODS.md 3.2, C13): the teacher is an ImageNet Swin-T fine-tuned on CIFAR-100 (teacher_ckpt, yours), the
# students load ImageNet backbones (student_init; RedNet-50 weights are the authors', d-li14/involution).
_base_ = ['../_base_/datasets/cifar100_bs64.py', '../_base_/default_runtime.py']
_preprocessor = {{_base_.cifar100_preprocessor}}
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
_pretrained = dict(  # ImageNet backbones [R]; download them yourself, nothing is fetched at run time
    swin_t='checkpoints/swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth',
    resnet50='checkpoints/resnet50_8xb32_in1k_20210831-ea4938fc.pth',
    rednet50='checkpoints/rednet50.pth')


def _init(name):
    return dict(type='Pretrained', checkpoint=_pretrained[name], prefix='backbone')


_swin_t = dict(
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'), head=dict(**_head, in_channels=768))
_cnn_stages = ['backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'backbone.layer4']
_swin_stages = ['backbone.stages.0', 'backbone.stages.1', 'backbone.stages.2', 'backbone.stages.3']
model = dict(
    _scope_='mmrazor',
    type='ACMKDDistill',
    teacher=_swin_t,
    teacher_ckpt='work_dirs/swin-t_cifar100/best.pth',
    teacher_stages=_swin_stages,
    students=dict(
        resnet50=dict(stages=_cnn_stages, model=dict(
            _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
            backbone=dict(type='ResNet', depth=50, init_cfg=_init('resnet50')),
            neck=dict(type='GlobalAveragePooling'), head=dict(**_head, in_channels=2048))),
        rednet50=dict(stages=_cnn_stages, model=dict(
            _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
            backbone=dict(type='RedNet', depth=50, init_cfg=_init('rednet50')),
            neck=dict(type='GlobalAveragePooling'), head=dict(**_head, in_channels=2048))),
        swin_t=dict(stages=_swin_stages, model=dict(
            _swin_t, backbone=dict(_swin_t['backbone'], init_cfg=_init('swin_t'))))),
    input_size=(224, 224),
    tau=1.0, lambda_ce=1.0, lambda_kd=1.0, alpha=1.0, beta=1.0, lambda_ssd_ce=1.0, lambda_ssd_kd=1.0,
    ssd_start_epoch=None,                             # n: [R] 10% of the epochs = 20
    ssd_mode='combined', attention='cbam', att_mode='pairwise', teacher_attention_epochs=1, dml_weight=0.0)
_upsample = dict(type='Resize', scale=224, interpolation='bicubic')
# [R] the weakest student is ranked on 5,000 training images held out of training (every 10th), not on the test set
train_dataloader = dict(dataset=dict(
    _delete_=True, type='HeldOutSubset', part='train', every=10,
    dataset=dict(_scope_='mmpretrain', type='CIFAR100', data_root='data/cifar100', split='train', pipeline=[
        dict(type='RandomCrop', crop_size=32, padding=4),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'), _upsample, dict(type='PackInputs')])))
val_dataloader = dict(dataset=dict(pipeline=[_upsample, dict(type='PackInputs')]))
test_dataloader = val_dataloader
optim_wrapper = dict(
    constructor='ACMKDOptimWrapperConstructor',
    optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4)))
param_scheduler = [dict(type='MultiStepLR', milestones=[100, 150], gamma=0.1, by_epoch=True)]
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=1)
val_cfg = dict(type='ACMKDValLoop')
test_cfg = dict(type='ACMKDTestLoop')
custom_hooks = [dict(type='ACMKDHook', metric='accuracy/top1', rank_by='held_out')]
default_hooks = dict(checkpoint=dict(save_best='ensemble.accuracy/top1', rule='greater'))
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=True)
