# VRM on CIFAR-100, ResNet32x4 -> ShuffleNetV2 (paper Table 1: teacher 79.42, student 71.82, VRM 79.34).
# Same recipe as the ResNet32x4 -> ResNet8x4 config, but lr 0.01 (CRD recipe for MobileNet/ShuffleNet students).
# teacher_ckpt: train a CE-only resnet32x4 on CIFAR-100 (CRD recipe) first.
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# CRD-style CIFAR backbones (mmkd_ext.models), defined here as configs/_base_/models/ has ResNets only.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
shufflenetv2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
               backbone=dict(type='CIFARShuffleNetV2', net_size=1), neck=dict(type='GlobalAveragePooling'),
               head=dict(**_head, in_channels=1024))
model = dict(
    architecture=dict(_delete_=True, **shufflenetv2),
    teacher={{_base_.resnet32x4}},
    teacher_ckpt='work_dirs/resnet32x4_1xb64-240e_cifar100/epoch_240.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
