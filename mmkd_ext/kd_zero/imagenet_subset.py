"""The ImageNet subset of the KD-Zero search ([P] "similar EA settings on a subset of ImageNet"; [R] METHODS.md 2.5:
100 classes x 260 images), written as mmpretrain annotation files next to the full ones.

    python -m mmkd_ext.kd_zero.imagenet_subset data/imagenet            # writes meta/kd_zero_{train,fitness}_*.txt

The proxy trains on ``per_class`` images of each chosen class; the fitness split holds ``fitness_per_class`` other
training images of the same classes (never the val set, METHODS.md 2.4). Labels keep their ImageNet-1k ids, so
the proxy trains the same 1000-way ResNets as the final distillation
(configs/kd_zero/search_kd_zero_resnet34_resnet18_in1k-subset.py).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

TRAIN_ANN = 'meta/kd_zero_train_100x260.txt'
FITNESS_ANN = 'meta/kd_zero_fitness_100x20.txt'
IMAGE_EXTS = ('.jpeg', '.jpg', '.png')


def read_annotations(data_root: str, ann_file: str = 'meta/train.txt', prefix: str = 'train'
                     ) -> Dict[int, List[str]]:
    """``{label: [relative image path, ...]}`` from an mmpretrain ``path label`` file, else from the class folders.

    Args:
        data_root: ImageNet root (``train/<wnid>/*.JPEG``, optionally ``meta/train.txt``).
        ann_file: annotation file relative to ``data_root``.
        prefix: image folder relative to ``data_root`` (used when ``ann_file`` does not exist).
    """
    path = osp.join(data_root, ann_file)
    by_label: Dict[int, List[str]] = {}
    if osp.isfile(path):
        with open(path) as f:
            for line_no, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise ValueError(f'{path}:{line_no}: expected "<image path> <label>", got {line.strip()!r}')
                by_label.setdefault(int(parts[1]), []).append(parts[0])
        return by_label
    folder = osp.join(data_root, prefix)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'neither {path} nor the class folders {folder}/<class>/ exist')
    for label, cls in enumerate(sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))):
        files = sorted(f for f in os.listdir(osp.join(folder, cls)) if f.lower().endswith(IMAGE_EXTS))
        by_label[label] = [f'{cls}/{f}' for f in files]
    return by_label


def split_subset(by_label: Dict[int, Sequence[str]], num_classes: int = 100, per_class: int = 260,
                 fitness_per_class: int = 20, seed: int = 0) -> Tuple[List[tuple], List[tuple]]:
    """Draw ``num_classes`` classes and, per class, disjoint proxy-training and fitness images.

    Returns:
        (train, fitness) lists of ``(path, label)``, sorted by label then path.
    """
    rng = random.Random(seed)
    labels = sorted(by_label)
    if num_classes > len(labels):
        raise ValueError(f'asked for {num_classes} classes, the annotations have {len(labels)}')
    train, fitness = [], []
    for label in sorted(rng.sample(labels, num_classes)):
        files = sorted(by_label[label])
        need = per_class + fitness_per_class
        if len(files) < need:
            raise ValueError(f'class {label} has {len(files)} images, {need} needed ({per_class} proxy training + '
                             f'{fitness_per_class} fitness)')
        rng.shuffle(files)
        train += sorted((p, label) for p in files[:per_class])
        fitness += sorted((p, label) for p in files[per_class:need])
    return train, fitness


def write_subset(data_root: str, num_classes: int = 100, per_class: int = 260, fitness_per_class: int = 20,
                 seed: int = 0, ann_file: str = 'meta/train.txt', train_out: Optional[str] = None,
                 fitness_out: Optional[str] = None) -> Tuple[str, str]:
    """Write the proxy-training and fitness annotation files (relative to ``data_root``); returns their paths."""
    train, fitness = split_subset(read_annotations(data_root, ann_file), num_classes, per_class,
                                  fitness_per_class, seed)
    paths = []
    for rows, rel in ((train, train_out or TRAIN_ANN), (fitness, fitness_out or FITNESS_ANN)):
        path = osp.join(data_root, rel)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.writelines(f'{p} {label}\n' for p, label in rows)
        paths.append(path)
    return paths[0], paths[1]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='write the KD-Zero ImageNet search subset annotation files')
    parser.add_argument('data_root', help='ImageNet root with train/<wnid>/ (and optionally meta/train.txt)')
    parser.add_argument('--classes', type=int, default=100)
    parser.add_argument('--per-class', type=int, default=260)
    parser.add_argument('--fitness-per-class', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    train, fitness = write_subset(args.data_root, args.classes, args.per_class, args.fitness_per_class, args.seed)
    print(f'proxy training list: {train}\nfitness list: {fitness}')


if __name__ == '__main__':
    main()
