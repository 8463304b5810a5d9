# Teacher of the AMD segmentation demo (PSPNet, dilated ResNetV1c-18) on the built-in Cityscapes-layout scenes:
#   python tools/train.py configs/amd/pspnet_r18_1xb4-600it_cityscapes-demo.py --work-dir work_dirs/amd_seg_teacher
_base_ = [
    '../_base_/models/cityscapes_demo_segmentors.py', '../_base_/datasets/cityscapes_demo_bs4.py',
    '../_base_/schedules/cityscapes_demo_sgd_600it.py', '../_base_/default_runtime.py'
]
default_scope = 'mmseg'
model = {{_base_.cityscapes_teacher}}
default_hooks = dict(logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1,
                                     save_best=None))
log_processor = dict(by_epoch=False)
