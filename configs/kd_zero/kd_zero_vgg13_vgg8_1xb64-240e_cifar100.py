# KD-Zero final distillation on CIFAR-100, VGG13 -> VGG8 (paper Table 3: 75.26), CRD-exact CIFAR VGGs (BN) of
# mmkd_ext.models. Recipe, distiller and [R] default genome of the resnet110 -> resnet20 config. Feature knowledge =
# the fifth conv block (512 x 4 x 4 for 32 px inputs).
_base_ = ['./kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/vgg13_cifar100_converted.pth'  # CRD released vgg13 (74.64%), converted

kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student='backbone.blocks.4', teacher='backbone.blocks.4', student_channels=512, teacher_channels=512),
    embedding=dict(student_channels=512, teacher_channels=512))
# Models from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.vgg8),
    teacher=dict(_delete_=True, **_base_.vgg13),
    teacher_ckpt=teacher_ckpt)
