"""Procedurally drawn shapes as a COCO detection dataset (boxes + polygon-free RLE-free masks)."""
from __future__ import annotations

import json
import os
import os.path as osp
import shutil

import numpy as np
from PIL import Image, ImageDraw

from .layout import done_marker, generated_once

SHAPES_LAYOUT = ('<root>/annotations/instances_{train,val}.json + <root>/{train,val}/<id>.png '
                 '(COCO, read by mmdet CocoDataset)')
SHAPE_CLASSES = ('circle', 'square', 'triangle')


def draw_shape(draw: ImageDraw.ImageDraw, kind: str, box: tuple, color: tuple) -> None:
    """Draw a filled ``kind`` shape inscribed in ``box=(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = box
    if kind == 'circle':
        draw.ellipse(box, fill=color)
    elif kind == 'square':
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=color)


def render_scene(rng: np.random.Generator, size: int, max_objects: int):
    """One image with 1..max_objects shapes; later shapes occlude earlier ones.

    Returns:
        (PIL image, list of (class index, visible mask (H, W) bool)).
    """
    base = rng.integers(40, 200, size=3)
    noise = rng.normal(0, 12, size=(size, size, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    owner = np.full((size, size), -1, dtype=np.int64)
    objects = []
    for k in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(len(SHAPE_CLASSES)))
        side = int(rng.integers(size // 8, size // 3))
        x0, y0 = (int(v) for v in rng.integers(0, size - side, size=2))
        color = tuple(int(c) for c in (base + rng.choice([-1, 1], size=3) * rng.integers(60, 120, size=3)) % 256)
        draw_shape(draw, SHAPE_CLASSES[cls], (x0, y0, x0 + side, y0 + side), color)
        mask_img = Image.new('L', (size, size))
        draw_shape(ImageDraw.Draw(mask_img), SHAPE_CLASSES[cls], (x0, y0, x0 + side, y0 + side), 1)
        owner[np.asarray(mask_img, dtype=bool)] = k
        objects.append(cls)
    return img, [(cls, owner == k) for k, cls in enumerate(objects)]


@generated_once
def make_shapes_coco(root: str = 'data/demo/shapes', num_train: int = 120, num_val: int = 40, size: int = 128,
                     max_objects: int = 5, min_visible: float = 0.3, seed: int = 0, force: bool = False) -> str:
    """Write the COCO-format shapes dataset.

    Args:
        root: output directory.
        num_train: training images.
        num_val: validation images.
        size: image side in pixels.
        max_objects: most shapes per image.
        min_visible: a shape whose visible fraction falls below this (occlusion) gets no annotation.
        seed: generator seed.
        force: rewrite even if a complete dataset exists.

    Returns:
        ``root``.
    """
    if osp.exists(done_marker(root)) and not force:
        return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(osp.join(root, 'annotations'))
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(SHAPE_CLASSES)]
    ann_id = 1
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, split))
        images, annotations = [], []
        for image_id in range(1, count + 1):
            img, objects = render_scene(rng, size, max_objects)
            file_name = f'{image_id:05d}.png'
            img.save(osp.join(root, split, file_name))
            images.append(dict(id=image_id, file_name=file_name, width=size, height=size))
            for cls, visible in objects:
                full = visible.sum()
                ys, xs = np.nonzero(visible)
                if full == 0 or len(xs) == 0:
                    continue
                x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
                if full < min_visible * (x1 - x0) * (y1 - y0) * 0.5:
                    continue
                annotations.append(dict(
                    id=ann_id, image_id=image_id, category_id=cls + 1, iscrowd=0, area=float(full),
                    bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)]))
                ann_id += 1
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    with open(done_marker(root), 'w') as f:
        f.write(f'seed={seed} num_train={num_train} num_val={num_val} size={size}\n')
    return root
