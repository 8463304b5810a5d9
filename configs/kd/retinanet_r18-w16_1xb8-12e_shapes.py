# The shapes demo student trained without distillation.
_base_ = [
    '../_base_/models/shapes_retinanets.py', '../_base_/datasets/shapes_coco_bs8.py',
    '../_base_/schedules/shapes_sgd_12e.py', '../_base_/default_runtime.py'
]
default_scope = 'mmdet'
model = {{_base_.shapes_student}}
