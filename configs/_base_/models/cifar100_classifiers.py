# CRD-style CIFAR-100 classifiers (mmkd_ext.models CIFAR backbones; mmpretrain's ResNet_CIFAR for resnet50), as
# {{_base_.<name>}} variables. A child that replaces a model dict of another family writes
# dict(_delete_=True, **_base_.<name>) ({{}} placeholders are strings until the file has been executed).
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
# CRD's CIFAR ResNet50 (bottleneck ResNet-50 with a 3x3 stride-1 stem and no max-pool) = mmpretrain's ResNet_CIFAR-50.
resnet50 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='ResNet_CIFAR', depth=50), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=2048))
# Wide ResNets (pre-activation), WRN-depth-width.
wrn_40_2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARWideResNet', arch='wrn_40_2'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=128))
wrn_16_2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARWideResNet', arch='wrn_16_2'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=128))
wrn_40_1 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                backbone=dict(type='CIFARWideResNet', arch='wrn_40_1'), neck=dict(type='GlobalAveragePooling'),
                head=dict(**_head, in_channels=64))
# VGGs with BN.
vgg13 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
             backbone=dict(type='CIFARVGG', arch='vgg13'), neck=dict(type='GlobalAveragePooling'),
             head=dict(**_head, in_channels=512))
vgg8 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
            backbone=dict(type='CIFARVGG', arch='vgg8'), neck=dict(type='GlobalAveragePooling'),
            head=dict(**_head, in_channels=512))
# CRD's "MobileNetV2" student is the x0.5 width variant.
mobilenetv2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                   backbone=dict(type='CIFARMobileNetV2', width_mult=0.5), neck=dict(type='GlobalAveragePooling'),
                   head=dict(**_head, in_channels=1280))
shufflenetv1 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                    backbone=dict(type='CIFARShuffleNetV1', groups=3), neck=dict(type='GlobalAveragePooling'),
                    head=dict(**_head, in_channels=960))
shufflenetv2 = dict(_scope_='mmpretrain', type='ImageClassifier', data_preprocessor=_preprocessor,
                    backbone=dict(type='CIFARShuffleNetV2', net_size=1), neck=dict(type='GlobalAveragePooling'),
                    head=dict(**_head, in_channels=1024))
