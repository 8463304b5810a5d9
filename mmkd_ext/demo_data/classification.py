"""Handwritten digits (scikit-learn) as a 32x32 RGB ImageFolder dataset."""
from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Optional

import numpy as np
from PIL import Image

from .layout import done_marker, generated_once

DIGITS_LAYOUT = '<root>/{train,val}/<class 0-9>/<id>.png (ImageFolder, read by mmpretrain CustomDataset)'
CLASSES = tuple(str(i) for i in range(10))


def stratified_split(labels: np.ndarray, per_class: dict, seed: int) -> dict:
    """Split indices class by class: ``per_class={'train': 30, 'val': 50}`` takes 30 + 50 of each class.

    Args:
        labels: (N,) integer labels.
        per_class: split name -> images per class (taken in this order after a seeded shuffle); ``None`` (last
            split only) takes every image of the class the splits before it left.
        seed: shuffle seed.

    Returns:
        split name -> sorted index array.
    """
    rng = np.random.default_rng(seed)
    splits = {name: [] for name in per_class}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for k, (name, n) in enumerate(per_class.items()):
            if n is None:
                if k != len(per_class) - 1:
                    raise ValueError(f'split {name!r}: only the last split may take the rest (per_class=None)')
                n = len(idx) - start
            if start + n > len(idx):
                raise ValueError(f'class {c} has {len(idx)} images, fewer than the {start + n} asked for')
            splits[name].extend(idx[start:start + n].tolist())
            start += n
    return {name: np.sort(np.array(v)) for name, v in splits.items()}


def digit_to_rgb(image8: np.ndarray, size: int = 32) -> Image.Image:
    """An 8x8 digit with values 0..16 -> a size x size RGB image (dark ink on white, bicubic)."""
    gray = (255 - image8.astype(np.float32) * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode='L').resize((size, size), Image.BICUBIC).convert('RGB')


def digits_marker_text(seed: int, train_per_class: int, val_per_class: Optional[int]) -> str:
    """What :func:`make_digits` writes to the completion marker: the settings of the split on disk."""
    return f'seed={seed} train_per_class={train_per_class} val_per_class={val_per_class}\n'


@generated_once
def make_digits(root: str = 'data/demo/digits', train_per_class: int = 30, val_per_class: Optional[int] = None,
                seed: int = 0, force: bool = False) -> str:
    """Write the digits ImageFolder dataset (low-data regime: 300 train images; by default every other image of the
    1,797, i.e. 1,497, validates: the more validation images, the less a row's accuracy moves with the split).

    A root written with other settings (e.g. the earlier 50 validation images per class) is rewritten.

    Args:
        root: output directory.
        train_per_class: training images per class.
        val_per_class: validation images per class; None: every image not used for training.
        seed: split seed.
        force: rewrite even if a complete dataset exists.

    Returns:
        ``root``.
    """
    marker = done_marker(root)
    if osp.exists(marker) and not force:
        with open(marker) as f:
            if f.read() == digits_marker_text(seed, train_per_class, val_per_class):
                return root
    from sklearn.datasets import load_digits
    digits = load_digits()
    splits = stratified_split(digits.target, {'train': train_per_class, 'val': val_per_class}, seed)
    shutil.rmtree(root, ignore_errors=True)
    for split, indices in splits.items():
        for i in indices:
            folder = osp.join(root, split, CLASSES[digits.target[i]])
            os.makedirs(folder, exist_ok=True)
            digit_to_rgb(digits.images[i]).save(osp.join(folder, f'{i:04d}.png'))
    with open(marker, 'w') as f:
        f.write(digits_marker_text(seed, train_per_class, val_per_class))
    return root
