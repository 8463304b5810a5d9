# KD-Zero final distillation on CIFAR-100, VGG13 -> MobileNetV2 x0.5 (paper Table 3's heterogeneous CNN pair), with the
# CRD-exact CIFAR backbones of mmkd_ext.models. Same recipe as resnet32x4 -> resnet8x4 but lr 0.01 (CRD recipe for
# MobileNet students). The genome is the [R] default until a search writes best_distiller_config.py.
_base_ = ['./kd_zero_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/vgg13_cifar100_converted.pth'  # CRD released vgg13 (74.64%), converted

kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    _delete_=True,
    feature=dict(student='backbone.conv2', teacher='backbone.blocks.4', student_channels=1280, teacher_channels=512),
    embedding=dict(student='neck', teacher='neck', student_channels=1280, teacher_channels=512, data_idx=0),
    logits=dict(student='head.fc', teacher='head.fc'),
    labels=dict(student='head.loss_module', data_idx=1))
# Models from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.mobilenetv2),
    teacher=dict(_delete_=True, **_base_.vgg13),
    teacher_ckpt=teacher_ckpt)
optim_wrapper = dict(optimizer=dict(lr=0.01))
