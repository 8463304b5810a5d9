# The digits demo student trained without distillation (the baseline of the demo table).
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
default_scope = 'mmpretrain'
model = {{_base_.digits_student}}
