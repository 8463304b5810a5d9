"""Convert torchvision's ImageNet ResNet weights into checkpoints the ImageNet configs load as teachers.

The ImageNet tables of VRM (Table 2) and KD-Zero (Table 4), like CRD's and ReviewKD's before them, distil from
torchvision's ImageNet ResNets (ResNet-34 73.31 %, ResNet-50 76.16 % top-1 as those papers report them).
mmpretrain's ``ResNet`` is the same architecture (``style='pytorch'``: stride on the 3x3 conv) with the same
parameter names; only the prefixes differ (``backbone.``, ``head.fc.``). This script renames them and writes an
MMEngine checkpoint of an mmpretrain ``ImageClassifier``
(``mmpretrain::resnet/resnet{18,34,50,101,152}_8xb32_in1k.py``):

    python tools/model_converters/torchvision_to_mmpretrain.py resnet34-b627a593.pth \
        checkpoints/torchvision/resnet34_in1k_converted.pth --arch resnet34 --verify

``--verify`` builds torchvision's model with the original weights and the mmpretrain model with the converted
ones and prints the largest logit difference on a random batch (it must be float noise). The weight files are not
downloaded here (no network at run time): fetch them from https://download.pytorch.org/models/ (the file names of
:data:`RELEASED`) or copy them from a ``~/.cache/torch/hub/checkpoints`` where torchvision put them.
"""
from __future__ import annotations

import argparse
import functools
import os
import os.path as osp
import re
import sys
from typing import Callable, Dict, Optional

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmkd_ext.compat.checkpoint import load_checkpoint_file  # noqa: E402
from mmkd_ext.weights import CheckpointMismatchError, build_on_meta, fitting_models, mismatch_summary  # noqa: E402

# torchvision arch -> (mmpretrain config of the same model, IMAGENET1K_V1 file, top-1 % the KD papers report)
RELEASED = {
    'resnet18': ('mmpretrain::resnet/resnet18_8xb32_in1k.py', 'resnet18-f37072fd.pth', 69.76),
    'resnet34': ('mmpretrain::resnet/resnet34_8xb32_in1k.py', 'resnet34-b627a593.pth', 73.31),
    'resnet50': ('mmpretrain::resnet/resnet50_8xb32_in1k.py', 'resnet50-0676ba61.pth', 76.16),
    'resnet101': ('mmpretrain::resnet/resnet101_8xb32_in1k.py', 'resnet101-63fe2227.pth', 77.37),
    'resnet152': ('mmpretrain::resnet/resnet152_8xb32_in1k.py', 'resnet152-394f9c45.pth', 78.31),
}
# torchvision name -> ours; the first matching pattern wins
_RULES = [(r'^(conv1|bn1|layer[1-4])\.', r'backbone.\1.'), (r'^fc\.', 'head.fc.')]


def convert_key(key: str) -> str:
    """The mmpretrain ``ImageClassifier`` key of a torchvision ResNet key (``layer1.0.conv1.weight`` ->
    ``backbone.layer1.0.conv1.weight``, ``fc.bias`` -> ``head.fc.bias``).

    Raises:
        KeyError: ``key`` is not a torchvision ResNet parameter or buffer name.
    """
    for pattern, replacement in _RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    raise KeyError(f'torchvision ResNet key {key!r} has no counterpart in mmpretrain\'s ResNet; is this a '
                   f'torchvision {"/".join(RELEASED)} state dict?')


def convert_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Rename every entry (``module.`` prefixes of DataParallel checkpoints removed first)."""
    return {convert_key(k[len('module.'):] if k.startswith('module.') else k): v for k, v in state_dict.items()}


def load_released(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of a torchvision weight file (a plain state dict; ``{'state_dict' | 'model': ...}`` also read)."""
    ckpt = load_checkpoint_file(path, map_location='cpu')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
    if not (isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values())):
        raise KeyError(f'{path} is not a torchvision state dict (expected parameter name -> tensor)')
    return ckpt


def torchvision_builders() -> Dict[str, Callable[[], torch.nn.Module]]:
    """arch -> a function building torchvision's model of that arch (random weights, no download)."""
    import torchvision
    return {arch: functools.partial(getattr(torchvision.models, arch), weights=None) for arch in RELEASED}


def check_arch(state_dict: Dict[str, torch.Tensor], arch: str, src: str) -> None:
    """Refuse weights that are not torchvision's ``arch`` (e.g. resnet18 weights given as ``--arch resnet34``).

    Args:
        state_dict: the torchvision state dict (``module.`` prefixes allowed).
        arch: the ``--arch`` given.
        src: the file, for the message.

    Raises:
        CheckpointMismatchError: the keys or shapes are not those of ``arch``; names the arch they fit, if any.
    """
    state_dict = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    builders = torchvision_builders()
    summary = mismatch_summary(build_on_meta(builders[arch]), state_dict)
    if not summary:
        return
    fit = fitting_models(state_dict, builders)
    advice = (f'they are torchvision {fit[0]} weights: use --arch {fit[0]}' if fit else
              f'they fit none of {sorted(RELEASED)}: is {src} a torchvision ImageNet ResNet file?')
    raise CheckpointMismatchError(f'{src} does not hold torchvision {arch} weights ({summary}); {advice}')


def build_mmpretrain_model(arch: str) -> torch.nn.Module:
    """The mmpretrain ``ImageClassifier`` the converted weights are for (random init, no download)."""
    from mmengine.hub import get_config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    model_cfg = get_config(RELEASED[arch][0]).model
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def max_logit_difference(original: Dict[str, torch.Tensor], converted: Dict[str, torch.Tensor], arch: str,
                         size: int = 224, batch: int = 2, seed: int = 0) -> float:
    """Largest |logit difference| between torchvision's ``arch`` with ``original`` and mmpretrain's with
    ``converted`` (both loaded strictly, eval mode) on one random batch."""
    import torchvision
    reference = getattr(torchvision.models, arch)(weights=None)
    reference.load_state_dict(original, strict=True)
    ours = build_mmpretrain_model(arch)
    ours.load_state_dict(converted, strict=True)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return float((reference.eval()(x) - ours.eval()(x, mode='tensor')).abs().max())


def convert(src: str, dst: str, arch: str, verify: bool = False) -> dict:
    """Convert ``src`` (torchvision weights) into ``dst`` (MMEngine checkpoint); returns the written checkpoint."""
    if arch not in RELEASED:
        raise KeyError(f'--arch {arch!r}: one of {sorted(RELEASED)}')
    original = load_released(src)
    check_arch(original, arch, src)
    converted = convert_state_dict(original)
    meta = dict(source=osp.basename(src), arch=arch, converted_by='torchvision_to_mmpretrain.py',
                mmpretrain_config=RELEASED[arch][0], released_top1=RELEASED[arch][2])
    if verify:
        meta['max_logit_difference'] = max_logit_difference(original, converted, arch)
    out = dict(state_dict=converted, meta=meta)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save(out, dst)
    return out


def main(argv: Optional[list] = None) -> dict:
    parser = argparse.ArgumentParser(description='torchvision ImageNet ResNet weights -> mmpretrain checkpoint')
    parser.add_argument('src', help='torchvision weight file, e.g. resnet34-b627a593.pth')
    parser.add_argument('dst', help='output, e.g. checkpoints/torchvision/resnet34_in1k_converted.pth')
    parser.add_argument('--arch', required=True, choices=sorted(RELEASED))
    parser.add_argument('--verify', action='store_true',
                        help='compare the logits of both models on a random batch (needs torchvision; ~10 s)')
    args = parser.parse_args(argv)
    out = convert(args.src, args.dst, args.arch, args.verify)
    line = f'{args.arch}: {len(out["state_dict"])} tensors -> {args.dst}'
    if args.verify:
        line += f'; max |logit difference| to torchvision: {out["meta"]["max_logit_difference"]:.2e}'
    print(line)
    return out


if __name__ == '__main__':
    main()
