# CIFAR-100 teacher ResNet32x4 (CRD benchmark: 79.42 top-1).
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py', '../_base_/default_runtime.py'
]
default_scope = 'mmpretrain'
model = {{_base_.resnet32x4}}
