# Teacher for the shapes detection demo (train it first; the KD config's teacher_ckpt points at its last epoch):
#   python tools/train.py configs/kd/retinanet_r18_1xb8-12e_shapes.py --work-dir work_dirs/shapes_teacher
_base_ = [
    '../_base_/models/shapes_retinanets.py', '../_base_/datasets/shapes_coco_bs8.py',
    '../_base_/schedules/shapes_sgd_12e.py', '../_base_/default_runtime.py'
]
default_scope = 'mmdet'
model = {{_base_.shapes_teacher}}
