"""Convert the CIFAR-100 teachers released with CRD / RepDistiller into checkpoints our configs load.

The CIFAR tables of KD-Zero and VRM (like every CIFAR KD paper since CRD) distil from the teacher checkpoints
that CRD (Tian et al., ICLR 2020) released with RepDistiller (``save/models/<arch>_vanilla/ckpt_epoch_240.pth``,
fetched by its ``scripts/fetch_pretrained_teachers.sh``). Our CIFAR backbones (``mmkd_ext/models/``) are the
same architectures; only the parameter names differ. This script renames them and writes an MMEngine checkpoint
(``state_dict`` of an mmpretrain ``ImageClassifier``: ``backbone.*``, ``head.fc.*``):

    python tools/model_converters/repdistiller_to_mmkd.py resnet32x4_vanilla/ckpt_epoch_240.pth \
        checkpoints/crd/resnet32x4_cifar100_converted.pth --arch resnet32x4

``--arch`` is one of :data:`RELEASED` (the teachers of the papers' tables, with CRD's reported top-1) or any
other arch of the same families (resnet8..110/8x4/32x4, wrn_*, vgg*, ResNet50). The released files are not
downloaded here (no network at run time): fetch them with RepDistiller's script first.
"""
from __future__ import annotations

import argparse
import functools
import os
import os.path as osp
import re
import sys
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmkd_ext.compat.checkpoint import load_checkpoint_file  # noqa: E402
from mmkd_ext.weights import CheckpointMismatchError, build_on_meta, fitting_models, mismatch_summary  # noqa: E402

# the teachers of the CRD CIFAR-100 tables (VRM Table 1, KD-Zero Table 3): arch -> (family, CRD top-1 %)
RELEASED = {
    'resnet56': ('resnet', 72.34),
    'resnet110': ('resnet', 74.31),
    'resnet32x4': ('resnet', 79.42),
    'wrn_40_2': ('wrn', 75.61),
    'vgg13': ('vgg', 74.64),
    'ResNet50': ('resnetv2', 79.34),
}
FAMILIES = ('resnet', 'wrn', 'vgg', 'resnetv2')

# (pattern, replacement) on RepDistiller names, per family; applied in order, the first match wins
_RULES: Dict[str, List[Tuple[str, str]]] = {
    # models/resnet.py: conv1/bn1 stem -> CIFARResNet.stem.{0,1}; layerK blocks keep their names
    'resnet': [(r'^conv1\.', 'backbone.stem.0.'), (r'^bn1\.', 'backbone.stem.1.'), (r'^(layer\d\.)', r'backbone.\1'),
               (r'^fc\.', 'head.fc.')],
    # models/wrn.py: blockK.layer.J -> CIFARWideResNet.layerK.J, convShortcut -> shortcut, final bn1 -> final_bn
    'wrn': [(r'^conv1\.', 'backbone.stem.'),
            (r'^block(\d)\.layer\.(\d+)\.convShortcut\.', r'backbone.layer\1.\2.shortcut.'),
            (r'^block(\d)\.layer\.(\d+)\.', r'backbone.layer\1.\2.'), (r'^bn1\.', 'backbone.final_bn.'),
            (r'^fc\.', 'head.fc.')],
    # models/vgg.py (*_bn): blockK.J -> CIFARVGG.blocks.K.J (same conv/BN/ReLU positions), classifier -> head.fc
    'vgg': [(r'^block(\d)\.', r'backbone.blocks.\1.'), (r'^classifier\.', 'head.fc.')],
    # models/resnetv2.py (ResNet50): mmpretrain ResNet_CIFAR names, shortcut -> downsample, linear -> head.fc
    'resnetv2': [(r'^(layer\d\.\d+\.)shortcut\.', r'backbone.\1downsample.'),
                 (r'^(conv1|bn1|layer\d)\.', r'backbone.\1.'), (r'^linear\.', 'head.fc.')],
}


def our_backbones() -> Dict[str, Callable[[], torch.nn.Module]]:
    """RepDistiller arch -> a function building our backbone of that arch (the archs this script converts)."""
    from mmpretrain.models.backbones import ResNet_CIFAR

    from mmkd_ext.models import CIFARVGG, CIFARResNet, CIFARWideResNet
    from mmkd_ext.models.cifar_resnet import ARCHS as RESNETS
    from mmkd_ext.models.cifar_vgg import ARCHS as VGGS
    from mmkd_ext.models.cifar_wrn import ARCHS as WRNS
    builders: Dict[str, Callable[[], torch.nn.Module]] = {}
    for archs, cls in ((RESNETS, CIFARResNet), (WRNS, CIFARWideResNet), (VGGS, CIFARVGG)):
        builders.update((arch, functools.partial(cls, arch=arch)) for arch in archs if arch != 'resnet8x0.5')  # ours
    builders['ResNet50'] = functools.partial(ResNet_CIFAR, depth=50)
    return builders


def family_of(arch: str) -> str:
    """The RepDistiller model file an arch comes from ('resnet', 'wrn', 'vgg' or 'resnetv2').

    Raises:
        KeyError: ``arch`` is none of :func:`our_backbones` (the message lists them).
    """
    if arch not in our_backbones():
        raise KeyError(f'unknown RepDistiller arch {arch!r}: --arch is one of {sorted(our_backbones())} (the '
                       f'teachers of the CRD tables: {sorted(RELEASED)})')
    if arch in RELEASED:
        return RELEASED[arch][0]
    prefixes = (('resnet', 'resnet'), ('wrn', 'wrn'), ('vgg', 'vgg'), ('ResNet', 'resnetv2'))
    return next(family for prefix, family in prefixes if arch.startswith(prefix))


def is_torchvision_resnet(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether the weights are a torchvision ImageNet ResNet's (7x7 stem conv, four stages), not RepDistiller's."""
    stem = state_dict.get('conv1.weight', state_dict.get('module.conv1.weight'))
    return stem is not None and tuple(stem.shape[-2:]) == (7, 7) and any('layer4.' in k for k in state_dict)


def archs_of(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """The archs of :func:`our_backbones` whose (converted) backbone ``state_dict`` fits exactly."""
    builders, fit = our_backbones(), []
    for family in FAMILIES:
        try:
            converted = convert_state_dict(state_dict, family)
        except KeyError:  # keys of another model file
            continue
        backbone = {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith('backbone.')}
        fit += fitting_models(backbone, {a: b for a, b in builders.items() if family_of(a) == family})
    return fit


def check_arch(state_dict: Dict[str, torch.Tensor], arch: str, src: str) -> None:
    """Refuse weights that are not RepDistiller's ``arch`` (another arch, or a torchvision ImageNet file).

    Args:
        state_dict: the released model state dict.
        arch: the ``--arch`` given.
        src: the file, for the message.

    Raises:
        CheckpointMismatchError: names the tool for a torchvision file, else the arch the weights fit, if any.
    """
    if is_torchvision_resnet(state_dict):
        raise CheckpointMismatchError(
            f'{src} holds torchvision ImageNet ResNet weights (7x7 stem, layer4), not a RepDistiller CIFAR model: '
            'convert it with tools/model_converters/torchvision_to_mmpretrain.py SRC DST --arch resnet{18,34,50,...}')
    family = family_of(arch)
    try:
        converted = convert_state_dict(state_dict, family)
        summary = mismatch_summary(build_on_meta(our_backbones()[arch]),
                                   {k[len('backbone.'):]: v for k, v in converted.items() if k.startswith('backbone.')})
    except KeyError as err:
        summary = str(err).strip('"')
    if not summary:
        return
    fit = archs_of(state_dict)
    advice = f'they are {fit[0]} weights: use --arch {fit[0]}' if fit else 'they fit none of the archs of --arch'
    raise CheckpointMismatchError(f'{src} does not hold RepDistiller {arch} weights ({summary}); {advice}')


def convert_key(key: str, family: str) -> str:
    """Our name of a RepDistiller parameter/buffer name.

    Args:
        key: e.g. ``'layer1.0.conv1.weight'``.
        family: see :data:`FAMILIES`.

    Returns:
        The ``ImageClassifier`` state-dict key, e.g. ``'backbone.layer1.0.conv1.weight'``.
    """
    for pattern, replacement in _RULES[family]:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    raise KeyError(f'RepDistiller {family} key {key!r} has no counterpart in our model; is --arch right?')


def convert_state_dict(state_dict: Dict[str, torch.Tensor], family: str) -> Dict[str, torch.Tensor]:
    """Rename every entry (``module.`` prefixes of DataParallel checkpoints removed first)."""
    strip: Callable[[str], str] = lambda k: k[len('module.'):] if k.startswith('module.') else k  # noqa: E731
    return {convert_key(strip(k), family): v for k, v in state_dict.items()}


def load_released(path: str) -> Dict[str, torch.Tensor]:
    """The model state dict of a released checkpoint (``{'model': state_dict, 'epoch': ..., ...}``)."""
    ckpt = load_checkpoint_file(path, map_location='cpu')
    if isinstance(ckpt, dict) and 'model' in ckpt:
        return ckpt['model']
    if isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise KeyError(f"{path} is not a RepDistiller checkpoint: expected a dict with 'model' (the state dict), got keys "
                   f'{sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__}')


def convert(src: str, dst: str, arch: str) -> dict:
    """Convert ``src`` (released) into ``dst`` (MMEngine checkpoint); returns the written checkpoint."""
    family = family_of(arch)
    released = load_released(src)
    check_arch(released, arch, src)
    out = dict(state_dict=convert_state_dict(released, family),
               meta=dict(source=osp.basename(src), arch=arch, converted_by='repdistiller_to_mmkd.py',
                         released_top1=RELEASED.get(arch, (None, None))[1]))
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description='CRD/RepDistiller CIFAR-100 teacher -> mmkd_ext checkpoint')
    parser.add_argument('src', help='released checkpoint, e.g. save/models/resnet32x4_vanilla/ckpt_epoch_240.pth')
    parser.add_argument('dst', help='output, e.g. checkpoints/crd/resnet32x4_cifar100_converted.pth')
    parser.add_argument('--arch', required=True, help=f'RepDistiller arch name ({", ".join(RELEASED)}, ...)')
    args = parser.parse_args(argv)
    out = convert(args.src, args.dst, args.arch)
    print(f'{args.arch}: {len(out["state_dict"])} tensors -> {args.dst}')
    return out


if __name__ == '__main__':
    main()
