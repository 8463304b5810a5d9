# KD-Zero final distillation on CIFAR-100, resnet110 -> resnet32 (paper Table 3: 74.19). Same recipe, teacher,
# distiller and [R] default genome as the resnet110 -> resnet20 config; only the student depth changes.
_base_ = ['./kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py']
model = dict(architecture=dict(backbone=dict(arch='resnet32')))
