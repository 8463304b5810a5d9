# VRM on CIFAR-100, VGG13 -> MobileNetV2 (x0.5) (paper Table 1: teacher 74.64, student 64.60, VRM 71.66).
# Same recipe as the ResNet32x4 -> ResNet8x4 config, but lr 0.01 (CRD recipe for MobileNet/ShuffleNet students).
# teacher_ckpt: CRD's released vgg13 (74.64%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# Student and teacher come from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.mobilenetv2),
    teacher=dict(_delete_=True, **_base_.vgg13),
    teacher_ckpt='checkpoints/crd/vgg13_cifar100_converted.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
