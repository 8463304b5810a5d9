# VRM on CIFAR-100, WRN-40-2 -> WRN-16-2 (paper Table 1: teacher 75.61, student 73.26, VRM 77.47).
# Same recipe as the ResNet32x4 -> ResNet8x4 config; only the pair changes.
# teacher_ckpt: CRD's released wrn_40_2 (75.61%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# Student and teacher come from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.wrn_16_2),
    teacher=dict(_delete_=True, **_base_.wrn_40_2),
    teacher_ckpt='checkpoints/crd/wrn_40_2_cifar100_converted.pth')
