"""Stand-in data in the *real* on-disk formats of CIFAR-100, ImageNet, COCO 2017 and Cityscapes.

A handful of images per split, generated on demand and deterministic, so that every shipped config can be run end
to end (``tools/misc/check_config.py``) by the real dataset classes and metrics without the real datasets:

* CIFAR-100 / CIFAR-10: ``cifar-100-python/{train,test,meta}`` / ``cifar-10-batches-py/...`` pickles (the python
  version), read by mmpretrain ``CIFAR100`` / ``CIFAR10`` (MMRazor's own CIFAR-10 configs).
  The real class verifies the files' md5 sums against the published archive, which stand-in files cannot match;
  ``CIFAR100StandIn`` / ``CIFAR10StandIn`` (registered in mmpretrain's DATASETS) are the same classes with the md5
  sums switched off,
  and it is the only dataset type the config check swaps. Nothing else about the data is faked.
* ImageNet: ``train/<wnid>/*.JPEG``, ``val/*.JPEG``, ``meta/{train,val}.txt`` (mmpretrain ``ImageNet``),
  real-sized JPEGs (500x375, quality 90).
* COCO 2017: ``annotations/instances_{train,val}2017.json`` with the 80 categories and their real ids, boxes and
  RLE masks, ``{train,val}2017/*.jpg`` (mmdet ``CocoDataset`` + ``CocoMetric``).
* Cityscapes: ``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` and ``gtFine/.../*_gtFine_labelTrainIds.png``
  with the 19 train ids (mmseg ``CityscapesDataset`` + ``IoUMetric``).

``standin_roots(base)`` maps each real root used by the configs (``data/cifar100`` ...) to its stand-in.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import pickle
import shutil
from typing import Callable, Dict

import numpy as np
from PIL import Image

from .detection import render_scene
from .layout import done_marker, generated_once
from .segmentation import render_street

CIFAR100_CLASSES = 100
IMAGENET_CLASSES = 1000
# COCO 2017's 80 category ids (1..90 with the 10 unused ids left out), in the order of mmdet's CocoDataset classes
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
STANDIN_BASE = 'data/standin'


def _finish(root: str, note: str) -> str:
    with open(done_marker(root), 'w') as f:
        f.write(note + '\n')
    return root


def _fresh(root: str, force: bool) -> bool:
    """True when ``root`` must be (re)written: no completion marker yet, or ``force``."""
    if osp.exists(done_marker(root)) and not force:
        return False
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    return True


def _noise_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour image (H, W, 3) uint8: low-frequency blobs plus noise, JPEG-friendly."""
    coarse = rng.integers(0, 256, size=(max(2, height // 64), max(2, width // 64), 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), dtype=np.float32)
    img += rng.normal(0, 10, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_cifar(folder: str, splits: Dict[str, int], num_classes: int, label_key: str, rng) -> None:
    """CIFAR python-version pickles: ``data`` (N, 3072) uint8 rows (R, G, B planes) and ``label_key`` labels."""
    os.makedirs(folder)
    seen = 0
    for split, count in splits.items():
        images = np.stack([_noise_image(rng, 32, 32) for _ in range(count)])  # (N, 32, 32, 3)
        # classes in turn over the files (the real sets are balanced; MMRazor's CRD sampler needs equal classes)
        labels = rng.permutation((seen + np.arange(count)) % num_classes)
        seen += count
        entry = {'filenames': [f'standin_{split}_{i}.png' for i in range(count)],
                 'data': images.transpose(0, 3, 1, 2).reshape(count, -1), label_key: labels.tolist()}
        if label_key == 'fine_labels':
            entry['coarse_labels'] = (labels // 5).tolist()
        with open(osp.join(folder, split), 'wb') as f:
            pickle.dump(entry, f)


@generated_once
def make_cifar100_standin(root: str, num_train: int = 16, num_test: int = 8, seed: int = 0,
                          force: bool = False) -> str:
    """Write ``<root>/cifar-100-python/{train,test,meta}`` in the python-pickle format of CIFAR-100.

    Args:
        root: the dataset root (``data_root`` of the configs).
        num_train: training images.
        num_test: test images.
        seed: generator seed.
        force: rewrite even if complete.

    Returns:
        ``root``.
    """
    if not _fresh(root, force):
        return root
    folder = osp.join(root, 'cifar-100-python')
    _write_cifar(folder, {'train': num_train, 'test': num_test}, CIFAR100_CLASSES, 'fine_labels',
                 np.random.default_rng(seed))
    meta = {'fine_label_names': [f'class_{i:03d}' for i in range(CIFAR100_CLASSES)],
            'coarse_label_names': [f'superclass_{i:02d}' for i in range(20)]}
    with open(osp.join(folder, 'meta'), 'wb') as f:
        pickle.dump(meta, f)
    return _finish(root, f'cifar100 stand-in seed={seed} train={num_train} test={num_test}')


@generated_once
def make_cifar10_standin(root: str, num_per_batch: int = 4, num_test: int = 8, seed: int = 0,
                         force: bool = False) -> str:
    """Write ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` (CIFAR-10, python version).

    Args:
        root: the dataset root.
        num_per_batch: images in each of the 5 training batches.
        num_test: test images.
        seed: generator seed.
        force: rewrite even if complete.

    Returns:
        ``root``.
    """
    if not _fresh(root, force):
        return root
    folder = osp.join(root, 'cifar-10-batches-py')
    splits = {f'data_batch_{i}': num_per_batch for i in range(1, 6)}
    splits['test_batch'] = num_test
    _write_cifar(folder, splits, 10, 'labels', np.random.default_rng(seed))
    with open(osp.join(folder, 'batches.meta'), 'wb') as f:
        pickle.dump({'label_names': [f'class_{i}' for i in range(10)], 'num_cases_per_batch': num_per_batch}, f)
    return _finish(root, f'cifar10 stand-in seed={seed} train={5 * num_per_batch} test={num_test}')


@generated_once
def make_imagenet_standin(root: str, num_train: int = 16, num_val: int = 8, width: int = 500, height: int = 375,
                          seed: int = 0, force: bool = False) -> str:
    """Write an ImageNet-1k tree: ``train/<wnid>/<wnid>_<i>.JPEG``, ``val/ILSVRC2012_val_<i>.JPEG``, ``meta/*.txt``.

    Args:
        root: the dataset root.
        num_train: training images (over 4 classes).
        num_val: validation images.
        width: image width (ImageNet's typical 500).
        height: image height (375).
        seed: generator seed.
        force: rewrite even if complete.

    Returns:
        ``root``.
    """
    if not _fresh(root, force):
        return root
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'meta'))
    lines = {'train': [], 'val': []}
    classes = [int(c) for c in rng.choice(IMAGENET_CLASSES, size=4, replace=False)]
    for i in range(num_train):
        label = classes[i % len(classes)]  # a few images per class: class-balanced subsets can be drawn
        wnid = f'n{label:08d}'
        os.makedirs(osp.join(root, 'train', wnid), exist_ok=True)
        name = f'{wnid}/{wnid}_{i}.JPEG'
        Image.fromarray(_noise_image(rng, height, width)).save(osp.join(root, 'train', name), quality=90)
        lines['train'].append(f'{name} {label}')
    os.makedirs(osp.join(root, 'val'))
    for i in range(num_val):
        name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
        Image.fromarray(_noise_image(rng, height, width)).save(osp.join(root, 'val', name), quality=90)
        lines['val'].append(f'{name} {int(rng.integers(IMAGENET_CLASSES))}')
    for split, rows in lines.items():
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(rows) + '\n')
    return _finish(root, f'imagenet stand-in seed={seed} train={num_train} val={num_val} size={width}x{height}')


def _coco_annotations(rng: np.random.Generator, image_id: int, objects, first_ann_id: int, category_ids):
    """COCO annotation dicts (bbox, area, RLE mask) for the visible shapes of one image."""
    from pycocotools import mask as mask_utils
    anns = []
    for cls, visible in objects:
        ys, xs = np.nonzero(visible)
        if len(xs) == 0:
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(id=first_ann_id + len(anns), image_id=image_id,
                         category_id=int(category_ids[int(rng.integers(len(category_ids)))]), iscrowd=0,
                         area=float(visible.sum()), segmentation=rle,
                         bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)]))
    return anns


@generated_once
def make_coco_standin(root: str, num_train: int = 8, num_val: int = 4, size: int = 320, seed: int = 0,
                      force: bool = False) -> str:
    """Write COCO 2017: ``annotations/instances_{train,val}2017.json`` (80 categories) and ``{train,val}2017/*.jpg``.

    Args:
        root: the dataset root.
        num_train: training images.
        num_val: validation images.
        size: image side.
        seed: generator seed.
        force: rewrite even if complete.

    Returns:
        ``root``.
    """
    if not _fresh(root, force):
        return root
    from mmdet.datasets import CocoDataset
    names = CocoDataset.METAINFO['classes']
    categories = [dict(id=i, name=n, supercategory='standin') for i, n in zip(COCO_CATEGORY_IDS, names)]
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'annotations'))
    ann_id = 1
    for split, count in (('train2017', num_train), ('val2017', num_val)):
        os.makedirs(osp.join(root, split))
        images, annotations = [], []
        for k in range(count):
            image_id = 100000 + k
            img, objects = render_scene(rng, size, max_objects=4)
            file_name = f'{image_id:012d}.jpg'
            img.save(osp.join(root, split, file_name), quality=90)
            images.append(dict(id=image_id, file_name=file_name, width=size, height=size))
            anns = _coco_annotations(rng, image_id, objects, ann_id, COCO_CATEGORY_IDS)
            annotations += anns
            ann_id += len(anns)
        with open(osp.join(root, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return _finish(root, f'coco stand-in seed={seed} train={num_train} val={num_val} size={size}')


@generated_once
def make_cityscapes_standin(root: str, num_train: int = 8, num_val: int = 4, height: int = 256, width: int = 512,
                            seed: int = 0, force: bool = False) -> str:
    """Write the Cityscapes layout (``leftImg8bit`` + ``gtFine`` train ids, 19 classes, 255 = ignore).

    The street scenes of :mod:`.segmentation` draw 7 classes; a random strip of the other 12 train ids is painted
    along the bottom so every one of the 19 classes occurs.

    Args:
        root: the dataset root.
        num_train: training images.
        num_val: validation images.
        height: image height.
        width: image width.
        seed: generator seed.
        force: rewrite even if complete.

    Returns:
        ``root``.
    """
    if not _fresh(root, force):
        return root
    rng = np.random.default_rng(seed)
    for split, count, city in (('train', num_train, 'aachen'), ('val', num_val, 'frankfurt')):
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        ann_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir)
        os.makedirs(ann_dir)
        for i in range(count):
            image, label = render_street(rng, height, width)
            label = label.copy()
            strip = np.repeat(np.arange(19, dtype=np.uint8), -(-width // 19))[:width]
            label[-height // 16:] = strip
            label[:2] = 255  # an ignored border, as in real Cityscapes labels
            stem = f'{city}_{i:06d}_000019'
            Image.fromarray(image).save(osp.join(img_dir, f'{stem}_leftImg8bit.png'))
            Image.fromarray(label).save(osp.join(ann_dir, f'{stem}_gtFine_labelTrainIds.png'))
    return _finish(root, f'cityscapes stand-in seed={seed} train={num_train} val={num_val} size={height}x{width}')


def register_standin_datasets() -> None:
    """Register :class:`CIFAR10StandIn` / ``CIFAR100StandIn`` in mmpretrain's DATASETS (idempotent)."""
    from mmpretrain.datasets import CIFAR10, CIFAR100
    from mmpretrain.registry import DATASETS

    for real in (CIFAR10, CIFAR100):
        name = f'{real.__name__}StandIn'
        if DATASETS.get(name) is None:
            DATASETS.register_module(name=name, module=_without_md5(real, name))


def _without_md5(real: type, name: str) -> type:
    """``real`` (mmpretrain's CIFAR10 / CIFAR100) with the published archive's md5 sums switched off."""
    def __init__(self, *args, **kwargs):
        kwargs['download'] = False  # a stand-in is never downloaded
        real.__init__(self, *args, **kwargs)
    attrs = dict(train_list=[[f, None] for f, _ in real.train_list], test_list=[[f, None] for f, _ in real.test_list],
                 meta=dict(real.meta, md5=None), __init__=__init__,
                 __doc__=f"mmpretrain's ``{real.__name__}`` without the md5 check of the published archive.")
    return type(name, (real, ), attrs)


# real dataset root of the configs -> generator of its stand-in
STANDIN_MAKERS: Dict[str, Callable[..., str]] = {
    'data/cifar100': make_cifar100_standin,
    'data/cifar10': make_cifar10_standin,
    'data/imagenet': make_imagenet_standin,
    'data/coco': make_coco_standin,
    'data/cityscapes': make_cityscapes_standin,
}


def standin_roots(base: str = STANDIN_BASE) -> Dict[str, str]:
    """Real root -> stand-in root under ``base`` (``data/cifar100`` -> ``<base>/cifar100``)."""
    return {real: osp.join(base, osp.basename(real)) for real in STANDIN_MAKERS}


def make_standin(real_root: str, base: str = STANDIN_BASE) -> str:
    """Generate (if missing) the stand-in of ``real_root`` under ``base`` and return its path."""
    return STANDIN_MAKERS[real_root](standin_roots(base)[real_root])
