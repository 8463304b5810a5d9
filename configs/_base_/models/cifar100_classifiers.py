# CRD-style CIFAR ResNets for CIFAR-100 (mmkd_ext.models.CIFARResNet), as {{_base_.<name>}} variables.
_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                     std=[68.170, 65.392, 70.418], to_rgb=False)
_head = dict(type='LinearClsHead', num_classes=100, loss=dict(type='CrossEntropyLoss', loss_weight=1.0))
resnet32x4 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                  backbone=dict(type='CIFARResNet', arch='resnet32x4'), neck=dict(type='GlobalAveragePooling'),
                  head=dict(**_head, in_channels=256))
resnet8x4 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                 backbone=dict(type='CIFARResNet', arch='resnet8x4'), neck=dict(type='GlobalAveragePooling'),
                 head=dict(**_head, in_channels=256))
resnet56 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARResNet', arch='resnet56'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=64))
resnet20 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARResNet', arch='resnet20'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=64))
resnet110 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                 backbone=dict(type='CIFARResNet', arch='resnet110'), neck=dict(type='GlobalAveragePooling'),
                 head=dict(**_head, in_channels=64))
