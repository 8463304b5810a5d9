# The demo teacher and student: CRD-style CIFAR ResNets (mmkd_ext.models.CIFARResNet), 10 classes.
# Configs pick one with {{_base_.digits_teacher}} / {{_base_.digits_student}}.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5, 127.5, 127.5],
                     std=[127.5, 127.5, 127.5], to_rgb=False)
digits_teacher = dict(  # resnet20: 0.27 M parameters
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='CIFARResNet', arch='resnet20'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
digits_student = dict(  # resnet8x0.5 (resnet8 at half width): 0.02 M parameters
    _scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
    backbone=dict(type='CIFARResNet', arch='resnet8x0.5'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=32,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
