"""Backbones shared by every method (registered in mmpretrain's MODELS registry)."""
from .cifar_mobilenetv2 import CIFARMobileNetV2
from .cifar_resnet import CIFARResNet
from .cifar_shufflenet import CIFARShuffleNetV1, CIFARShuffleNetV2
from .cifar_vgg import CIFARVGG
from .cifar_wrn import CIFARWideResNet

__all__ = ['CIFARResNet', 'CIFARWideResNet', 'CIFARVGG', 'CIFARMobileNetV2', 'CIFARShuffleNetV1', 'CIFARShuffleNetV2']
