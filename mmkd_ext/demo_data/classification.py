"""Handwritten digits (scikit-learn) as a 32x32 RGB ImageFolder dataset."""
from __future__ import annotations

import os
import os.path as osp
import shutil

import numpy as np
from PIL import Image

from .layout import done_marker, generated_once

DIGITS_LAYOUT = '<root>/{train,val}/<class 0-9>/<id>.png (ImageFolder, read by mmpretrain CustomDataset)'
CLASSES = tuple(str(i) for i in range(10))


def stratified_split(labels: np.ndarray, per_class: dict, seed: int) -> dict:
    """Split indices class by class: ``per_class={'train': 30, 'val': 50}`` takes 30 + 50 of each class.

    Args:
        labels: (N,) integer labels.
        per_class: split name -> images per class (taken in this order after a seeded shuffle).
        seed: shuffle seed.

    Returns:
        split name -> sorted index array.
    """
    rng = np.random.default_rng(seed)
    splits = {name: [] for name in per_class}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, n in per_class.items():
            if start + n > len(idx):
                raise ValueError(f'class {c} has {len(idx)} images, fewer than the {start + n} asked for')
            splits[name].extend(idx[start:start + n].tolist())
            start += n
    return {name: np.sort(np.array(v)) for name, v in splits.items()}


def digit_to_rgb(image8: np.ndarray, size: int = 32) -> Image.Image:
    """An 8x8 digit with values 0..16 -> a size x size RGB image (dark ink on white, bicubic)."""
    gray = (255 - image8.astype(np.float32) * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode='L').resize((size, size), Image.BICUBIC).convert('RGB')


@generated_once
def make_digits(root: str = 'data/demo/digits', train_per_class: int = 30, val_per_class: int = 50,
                seed: int = 0, force: bool = False) -> str:
    """Write the digits ImageFolder dataset (low-data regime: 300 train, 500 val images by default).

    Args:
        root: output directory.
        train_per_class: training images per class.
        val_per_class: validation images per class.
        seed: split seed.
        force: rewrite even if a complete dataset exists.

    Returns:
        ``root``.
    """
    if osp.exists(done_marker(root)) and not force:
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
    with open(done_marker(root), 'w') as f:
        f.write(f'seed={seed} train_per_class={train_per_class} val_per_class={val_per_class}\n')
    return root
