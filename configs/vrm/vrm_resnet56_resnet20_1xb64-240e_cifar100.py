# VRM on CIFAR-100, ResNet56 -> ResNet20 (paper Table 1: teacher 72.34, student 69.06, VRM 72.09).
# Same recipe as the ResNet32x4 -> ResNet8x4 config; only the pair changes.
_base_ = ['./vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
model = dict(
    architecture={{_base_.resnet20}},
    teacher={{_base_.resnet56}},
    teacher_ckpt='checkpoints/crd/resnet56_cifar100_converted.pth')
