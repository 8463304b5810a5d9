"""Random-resized crops with flip, sampled at label generation and replayed at training (FKD Sec. 3.2).

Generation samples a crop box like torchvision's ``RandomResizedCrop.get_params``, stores it
*relative* to the image size (resolution independent, [X] official code) in the store's coordinate
dtype, and feeds the teacher the crop rebuilt from the *stored* coordinates by :func:`coords_to_box`.
Training rebuilds the same box with the same function, so teacher and student see the same region
(same pixels when the input sizes agree).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import cv2
import numpy as np

INTERPOLATIONS = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC,
                  'area': cv2.INTER_AREA, 'lanczos': cv2.INTER_LANCZOS4}


def sample_crop(rng: np.random.Generator, height: int, width: int, scale: Sequence[float],
                ratio: Sequence[float], attempts: int = 10) -> Tuple[int, int, int, int]:
    """A random-resized-crop box in pixels (torchvision ``RandomResizedCrop.get_params`` semantics).

    Args:
        rng: the random generator.
        height: image height H.
        width: image width W.
        scale: (min, max) fraction of the image area.
        ratio: (min, max) aspect ratio w/h, sampled log-uniformly.
        attempts: tries before falling back to a centre crop.

    Returns:
        (top, left, h, w) in pixels.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(attempts):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def box_to_coords(box: Tuple[int, int, int, int], height: int, width: int, dtype: str = 'float16') -> np.ndarray:
    """Relative coordinates (top/H, left/W, h/H, w/W), rounded to the store's dtype.

    Returns:
        (4,) array of ``dtype``.
    """
    top, left, h, w = box
    return np.array([top / height, left / width, h / height, w / width], dtype=np.float64).astype(dtype)


def coords_to_box(coords: Sequence[float], height: int, width: int) -> Tuple[int, int, int, int]:
    """Pixel box of relative coordinates on an H x W image, clipped to the image, at least 1 x 1.

    Args:
        coords: (4,) relative (top, left, height, width).
        height: H.
        width: W.

    Returns:
        (top, left, h, w) in pixels.
    """
    top_r, left_r, ch, cw = (float(c) for c in coords)
    top = min(max(int(round(top_r * height)), 0), height - 1)
    left = min(max(int(round(left_r * width)), 0), width - 1)
    h = min(max(int(round(ch * height)), 1), height - top)
    w = min(max(int(round(cw * width)), 1), width - left)
    return top, left, h, w


def crop_resize(img: np.ndarray, box: Tuple[int, int, int, int], size: Sequence[int], flip: bool,
                interpolation: str = 'bilinear') -> np.ndarray:
    """Cut ``box`` out of ``img``, resize it to ``size`` and optionally flip it horizontally.

    Args:
        img: (H, W, 3) or (H, W) image.
        box: (top, left, h, w) pixels.
        size: output (h, w).
        flip: mirror left-right after resizing.
        interpolation: one of :data:`INTERPOLATIONS`.

    Returns:
        (size[0], size[1], ...) contiguous image of ``img``'s dtype.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {tuple(INTERPOLATIONS)}, got {interpolation!r}')
    top, left, h, w = box
    patch = img[top:top + h, left:left + w]
    out = cv2.resize(patch, (int(size[1]), int(size[0])), interpolation=INTERPOLATIONS[interpolation])
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def sample_image_crops(seed: int, index: int, height: int, width: int, num_crops: int, scale: Sequence[float],
                       ratio: Sequence[float], flip_prob: float, coord_dtype: str) -> Tuple[np.ndarray, np.ndarray]:
    """The M crops of image ``index``: a pure function of (seed, index), so runs are reproducible
    whatever the order, resume point or number of processes.

    Returns:
        (coords (M, 4) of ``coord_dtype``, flips (M,) uint8).
    """
    rng = np.random.default_rng([seed, index])
    coords = np.stack([box_to_coords(sample_crop(rng, height, width, scale, ratio), height, width, coord_dtype)
                       for _ in range(num_crops)])
    flips = (rng.random(num_crops) < flip_prob).astype(np.uint8)
    return coords, flips
