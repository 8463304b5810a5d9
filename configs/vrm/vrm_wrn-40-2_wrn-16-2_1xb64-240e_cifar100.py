# VRM on CIFAR-100, WRN-40-2 -> WRN-16-2 (paper Table 1: teacher 75.61, student 73.26, VRM 77.47).
# Same recipe as the ResNet32x4 -> ResNet8x4 config; only the pair changes.
# teacher_ckpt: train a CE-only wrn-40-2 on CIFAR-100 (CRD recipe) first.
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# CRD-style CIFAR backbones (mmkd_ext.models), defined here as configs/_base_/models/ has ResNets only.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
wrn_40_2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
           backbone=dict(type='CIFARWideResNet', arch='wrn_40_2'), neck=dict(type='GlobalAveragePooling'),
           head=dict(**_head, in_channels=128))
wrn_16_2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
           backbone=dict(type='CIFARWideResNet', arch='wrn_16_2'), neck=dict(type='GlobalAveragePooling'),
           head=dict(**_head, in_channels=128))
model = dict(
    architecture=dict(_delete_=True, **wrn_16_2),
    teacher=dict(_delete_=True, **wrn_40_2),
    teacher_ckpt='work_dirs/wrn-40-2_1xb64-240e_cifar100/epoch_240.pth')
