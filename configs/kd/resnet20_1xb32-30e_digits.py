# Teacher for the digits demo: train it first, then point teacher_ckpt of the KD configs at it.
#   python tools/train.py configs/kd/resnet20_1xb32-30e_digits.py --work-dir work_dirs/digits_teacher
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
default_scope = 'mmpretrain'
model = {{_base_.digits_teacher}}
