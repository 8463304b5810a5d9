# VRM on CIFAR-100, ResNet32x4 -> ShuffleNetV2 (paper Table 1: teacher 79.42, student 71.82, VRM 79.34).
# Same recipe as the ResNet32x4 -> ResNet8x4 config, but lr 0.01 (CRD recipe for MobileNet/ShuffleNet students).
# teacher_ckpt: CRD's released resnet32x4 (79.42%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
# Models from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNet8x4 student.
model = dict(
    architecture=dict(_delete_=True, **_base_.shufflenetv2),
    teacher={{_base_.resnet32x4}},
    teacher_ckpt='checkpoints/crd/resnet32x4_cifar100_converted.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
