# Demo segmentors for the Cityscapes-layout scenes: PSPNet with a dilated ResNetV1c-18 teacher and an FCN with a
# half-width dilated ResNetV1c-18 student. Both decode heads output 19-class logits at 1/8 resolution.
_seg_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(128, 256))
_norm = dict(type='BN', requires_grad=True)
cityscapes_teacher = dict(
    _scope_='mmseg', type='EncoderDecoder', data_preprocessor=_seg_preprocessor,
    backbone=dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=_norm, norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='PSPHead', in_channels=512, in_index=3, channels=64, pool_scales=(1, 2, 3, 6),
                     dropout_ratio=0.1, num_classes=19, norm_cfg=_norm, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
cityscapes_student = dict(
    _scope_='mmseg', type='EncoderDecoder', data_preprocessor=_seg_preprocessor,
    backbone=dict(type='ResNetV1c', depth=18, base_channels=32, stem_channels=32, num_stages=4,
                  out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=_norm,
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(type='FCNHead', in_channels=256, in_index=3, channels=64, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=19, norm_cfg=_norm, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
