"""Procedurally drawn street-like scenes in the Cityscapes directory layout."""
from __future__ import annotations

import os
import os.path as osp
import shutil

import numpy as np
from PIL import Image, ImageDraw

from .layout import done_marker, generated_once

CITYSCAPES_LAYOUT = ('<root>/leftImg8bit/{train,val}/<city>/<id>_leftImg8bit.png + '
                     '<root>/gtFine/{train,val}/<city>/<id>_gtFine_labelTrainIds.png '
                     '(read by mmseg CityscapesDataset)')
# Cityscapes train ids of the classes drawn, and a base colour for each
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 8, 10, 11, 13
PALETTE = {ROAD: (128, 64, 128), SIDEWALK: (244, 35, 232), BUILDING: (70, 70, 70), VEGETATION: (107, 142, 35),
           SKY: (70, 130, 180), PERSON: (220, 20, 60), CAR: (0, 0, 142)}


def render_street(rng: np.random.Generator, height: int, width: int):
    """One scene: sky, buildings, vegetation, sidewalk, road, cars and people, drawn back to front.

    Returns:
        (RGB image (H, W, 3) uint8, train-id label (H, W) uint8).
    """
    label = Image.new('L', (width, height), SKY)
    draw = ImageDraw.Draw(label)
    horizon = int(height * rng.uniform(0.35, 0.55))
    x = 0
    while x < width:  # a skyline of buildings and trees
        w = int(rng.integers(width // 10, width // 4))
        top = int(rng.integers(height // 10, horizon - 4))
        cls = BUILDING if rng.random() < 0.7 else VEGETATION
        if cls == BUILDING:
            draw.rectangle((x, top, x + w, horizon), fill=cls)
        else:
            draw.ellipse((x, top, x + w, horizon + w // 4), fill=cls)
        x += w
    draw.rectangle((0, horizon, width, height), fill=SIDEWALK)
    vanish = width * rng.uniform(0.35, 0.65)
    draw.polygon([(vanish - 4, horizon), (vanish + 4, horizon), (width * 1.1, height), (-width * 0.1, height)],
                 fill=ROAD)
    for _ in range(int(rng.integers(1, 4))):  # cars on the road, bigger when nearer
        cy = int(rng.integers(horizon + 8, height - 4))
        cw = int(8 + 40 * (cy - horizon) / (height - horizon))
        cx = int(rng.integers(0, width - cw))
        draw.rectangle((cx, cy - cw // 2, cx + cw, cy), fill=CAR)
    for _ in range(int(rng.integers(0, 4))):  # people on the sidewalk
        py = int(rng.integers(horizon + 6, height))
        ph = int(6 + 24 * (py - horizon) / (height - horizon))
        px = int(rng.choice([rng.integers(0, width // 6), rng.integers(5 * width // 6, width)]))
        draw.rectangle((px, py - ph, px + max(2, ph // 4), py), fill=PERSON)
    label = np.asarray(label, dtype=np.uint8)
    image = np.zeros((height, width, 3), dtype=np.float32)
    for cls, color in PALETTE.items():
        image[label == cls] = color
    image += rng.normal(0, 18, size=image.shape)
    image *= rng.uniform(0.7, 1.2)  # global illumination
    return np.clip(image, 0, 255).astype(np.uint8), label


@generated_once
def make_cityscapes_scenes(root: str = 'data/demo/cityscapes', num_train: int = 60, num_val: int = 20,
                           height: int = 128, width: int = 256, seed: int = 0, force: bool = False) -> str:
    """Write the scenes with Cityscapes file names (``<city>_<seq>_<frame>_leftImg8bit.png``).

    Args:
        root: output directory.
        num_train: training images.
        num_val: validation images.
        height: image height.
        width: image width.
        seed: generator seed.
        force: rewrite even if a complete dataset exists.

    Returns:
        ``root``.
    """
    if osp.exists(done_marker(root)) and not force:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    for split, count, city in (('train', num_train, 'demotown'), ('val', num_val, 'democity')):
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        ann_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir)
        os.makedirs(ann_dir)
        for i in range(count):
            stem = f'{city}_{i:06d}_000019'
            image, label = render_street(rng, height, width)
            Image.fromarray(image).save(osp.join(img_dir, f'{stem}_leftImg8bit.png'))
            Image.fromarray(label).save(osp.join(ann_dir, f'{stem}_gtFine_labelTrainIds.png'))
    with open(done_marker(root), 'w') as f:
        f.write(f'seed={seed} num_train={num_train} num_val={num_val} size={height}x{width}\n')
    return root
