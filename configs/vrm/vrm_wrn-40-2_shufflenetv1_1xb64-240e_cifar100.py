# VRM on CIFAR-100, WRN-40-2 -> ShuffleNetV1 (paper Table 1: teacher 75.61, student 70.50, VRM 78.62).
# Same recipe as the ResNet32x4 -> ResNet8x4 config, but lr 0.01 (CRD recipe for MobileNet/ShuffleNet students).
# teacher_ckpt: CRD's released wrn_40_2 (75.61%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# Student and teacher come from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.shufflenetv1),
    teacher=dict(_delete_=True, **_base_.wrn_40_2),
    teacher_ckpt='checkpoints/crd/wrn_40_2_cifar100_converted.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
