# Demo detectors for the shapes data: RetinaNet with a ResNet-18 teacher and a quarter-width ResNet-18 student.
# Both FPNs output 64 channels, so FPN feature distillation needs no connector.
_det_preprocessor = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_size_divisor=32)
_head = dict(
    type='RetinaHead', num_classes=3, in_channels=64, stacked_convs=2, feat_channels=64,
    anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                          strides=[8, 16, 32, 64, 128]),
    bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
    loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type='L1Loss', loss_weight=1.0))
_train_cfg = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
    sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False)
_test_cfg = dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                 max_per_img=100)
shapes_teacher = dict(
    _scope_='mmdet', type='RetinaNet', data_preprocessor=_det_preprocessor,
    backbone=dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch'),
    neck=dict(type='FPN', in_channels=[64, 128, 256, 512], out_channels=64, start_level=1, add_extra_convs='on_input',
              num_outs=5),
    bbox_head=_head, train_cfg=_train_cfg, test_cfg=_test_cfg)
shapes_student = dict(
    _scope_='mmdet', type='RetinaNet', data_preprocessor=_det_preprocessor,
    backbone=dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch'),
    neck=dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=64, start_level=1, add_extra_convs='on_input',
              num_outs=5),
    bbox_head=_head, train_cfg=_train_cfg, test_cfg=_test_cfg)
