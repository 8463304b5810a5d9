# KD-Zero final distillation on CIFAR-100, resnet32x4 -> ShuffleNetV2 (paper Table 3: 77.45), CRD-exact CIFAR
# ShuffleV2 (net_size 1) of mmkd_ext.models. Teacher, recipe and [R] default genome of the resnet32x4 -> resnet8x4
# config, lr 0.01 for the ShuffleNet student [R] (METHODS.md 2.7). Feature knowledge = the final 1x1 conv + BN + ReLU
# (1024 x 4 x 4), aligned to the teacher's 256 channels by the 1x1 conv + BN connector.
_base_ = ['./kd_zero_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student='backbone.conv2', teacher='backbone.layer3', student_channels=1024, teacher_channels=256),
    embedding=dict(student_channels=1024, teacher_channels=256))
# The student from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNet8x4.
model = dict(architecture=dict(_delete_=True, **_base_.shufflenetv2))
optim_wrapper = dict(optimizer=dict(lr=0.01))
