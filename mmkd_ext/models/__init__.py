"""Backbones shared by every method (registered in mmpretrain's MODELS registry)."""
from .cifar_resnet import CIFARResNet

__all__ = ['CIFARResNet']
