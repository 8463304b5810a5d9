"""Backbones shared by every method (registered in mmpretrain's MODELS registry)."""
from .cifar_resnet import CIFARResNet

__all__ = ['CIFARResNet']
from .cifar_mobilenetv2 import CIFARMobileNetV2  # noqa: E402
from .cifar_shufflenet import CIFARShuffleNetV1, CIFARShuffleNetV2  # noqa: E402
from .cifar_vgg import CIFARVGG  # noqa: E402
from .cifar_wrn import CIFARWideResNet  # noqa: E402

__all__ += ['CIFARWideResNet', 'CIFARVGG', 'CIFARMobileNetV2', 'CIFARShuffleNetV1', 'CIFARShuffleNetV2']
