# KD-Zero final distillation on CIFAR-100, WRN-40-2 -> ShuffleNetV1 (paper Table 3: 77.52), CRD-exact CIFAR ShuffleV1
# (3 groups) of mmkd_ext.models. Teacher, recipe and [R] default genome of the WRN-40-2 -> WRN-16-2 config, lr 0.01
# for the ShuffleNet student [R] (METHODS.md 2.7). Feature knowledge = the last stage (960 x 4 x 4), aligned to the
# teacher's 128 channels by the 1x1 conv + BN connector.
_base_ = ['./kd_zero_wrn40-2_wrn16-2_1xb64-240e_cifar100.py']
kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student='backbone.layer3', student_channels=960),
    embedding=dict(student_channels=960))
# The student from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's WRN-16-2.
model = dict(architecture=dict(_delete_=True, **_base_.shufflenetv1))
optim_wrapper = dict(optimizer=dict(lr=0.01))
