# VRM on CIFAR-100, ResNet50 -> MobileNetV2 (x0.5) (paper Table 1: teacher 79.34, student 64.60, VRM 72.30).
# CRD's CIFAR ResNet50 (bottleneck ResNet-50 with a 3x3 stride-1 stem and no max-pool) is mmpretrain's ResNet_CIFAR
# with depth 50. Same recipe as the ResNet32x4 -> ResNet8x4 config, but lr 0.01 (CRD recipe for MobileNet students).
# teacher_ckpt: CRD's released ResNet50 (79.34%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# Student and teacher come from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.mobilenetv2),
    teacher=dict(_delete_=True, **_base_.resnet50),
    teacher_ckpt='checkpoints/crd/ResNet50_cifar100_converted.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
