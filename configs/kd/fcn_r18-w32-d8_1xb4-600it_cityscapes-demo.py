# The segmentation demo student trained without distillation.
_base_ = [
    '../_base_/models/cityscapes_demo_segmentors.py', '../_base_/datasets/cityscapes_demo_bs4.py',
    '../_base_/default_runtime.py', '../_base_/schedules/cityscapes_demo_sgd_600it.py'
]
default_hooks = dict(logger=dict(interval=20, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
default_scope = 'mmseg'
model = {{_base_.cityscapes_student}}
