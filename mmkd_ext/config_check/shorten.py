"""Shorter runs for the config check: a few iterations, a few evaluation images, small held-out splits."""
from __future__ import annotations

from typing import Any, Iterator

from mmengine.config import Config

from ..data_checks import iter_datasets
from .rewrite import config_dicts

EVAL_IMAGES = 8
HELD_OUT_EVERY = 2  # held-out splits on stand-in data: every 2nd training image
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def limit_train_iterations(cfg: Config, iters: int) -> str:
    """Shorten the schedule: epoch-based loops train one epoch of ``iters`` batches, iteration-based ``iters``."""
    train_cfg = cfg.train_cfg
    loader = cfg.train_dataloader
    if train_cfg.get('by_epoch', True) is False or 'Iter' in str(train_cfg.get('type', '')):
        limit_evaluation_images(cfg)
        train_cfg.max_iters = iters
        train_cfg.val_interval = iters
        return f'{iters} iterations' + start_late_phases_at_zero(cfg, epochs=0, iters=iters)
    images = iters * loader.batch_size * (HELD_OUT_EVERY if shorten_held_out_split(cfg) else 1)
    wrapper = str(loader.dataset.get('type', '')).split('.')[-1]
    if wrapper in WHOLE_SPLIT_WRAPPERS:
        note = f'1 epoch of the whole training split ({wrapper} {WHOLE_SPLIT_WRAPPERS[wrapper]})'
    else:
        for leaf in iter_datasets(loader.dataset):
            leaf['indices'] = images
        note = f'1 epoch of {iters} iterations ({images} images)'
    limit_evaluation_images(cfg)
    crops = crops_per_image(cfg)
    train_cfg.max_epochs = crops
    train_cfg.val_interval = crops
    return (note + (f', {crops} crop-epochs' if crops > 1 else '')
            + start_late_phases_at_zero(cfg, epochs=crops, iters=crops * iters))


def _scheduler_phases(node: Any) -> Iterator[dict]:
    """The phases of ``param_scheduler``: a phase, a list of them, or a dict of those per optimizer (DAFL)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            yield from _scheduler_phases(item)
    elif isinstance(node, dict):
        if 'type' in node:
            yield node
        else:
            for key, value in node.items():
                if key != '_delete_':
                    yield from _scheduler_phases(value)


# training-set wrappers that need the whole (stand-in) split, with the reason
WHOLE_SPLIT_WRAPPERS = {
    # MMRazor's CRD sampler stacks per-class index lists into one array: classes of unequal size (a few images out
    # of ten classes) are a ragged array numpy refuses; the stand-in CIFAR-10 has 2 images of each class
    'CRDDataset': 'needs classes of equal size',
}


def start_late_phases_at_zero(cfg: Config, epochs: int, iters: int) -> str:
    """Schedule phases that begin after the shortened schedule ends (``PolyLR(by_epoch=False, begin=5000)`` after
    a 5000-iteration warm-up) begin at 0 instead, so they are built and stepped: MMEngine gives a phase without
    ``end`` the schedule's end, and ``begin >= end`` is an error. Returns a note naming them ('' if none)."""
    moved = []
    for phase in _scheduler_phases(cfg.get('param_scheduler')):
        length = epochs if phase.get('by_epoch', True) else iters
        if phase.get('begin', 0) >= length > 0:
            moved.append(f"{phase.get('type')}(begin={phase['begin']})")
            phase['begin'] = 0
    return f'; {", ".join(moved)} begin at 0' if moved else ''


def shorten_held_out_split(cfg: Config) -> bool:
    """Hold out 1 training image in :data:`HELD_OUT_EVERY` (stand-in training sets have a handful of images):
    ``HeldOutSubset`` datasets (a plan holds its own splits out). Returns whether the config holds images out."""
    found = False
    for key in LOADERS:
        for node in config_dicts(cfg.get(key)):
            if str(node.get('type', '')).split('.')[-1] == 'HeldOutSubset':
                node['every'] = HELD_OUT_EVERY
                found = True
    return found


def limit_evaluation_images(cfg: Config, images: int = EVAL_IMAGES) -> None:
    """Validate and test on the first ``images`` images (the demo sets have hundreds)."""
    for key in ('val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            for leaf in iter_datasets(loader['dataset']):
                leaf['indices'] = images


def crops_per_image(cfg: Config) -> int:
    """Crops per image of a training set that replays several per image (one epoch each); 1 otherwise."""
    dataset = cfg.train_dataloader.dataset
    return int(dataset.get('crops_per_image', 1))  # datasets replaying several crops per image: one epoch each


def extend_schedule(cfg: Config) -> None:
    """One more epoch (or iteration) than :func:`limit_train_iterations` set, for the resume step."""
    train_cfg = cfg.train_cfg
    if 'max_iters' in train_cfg and not train_cfg.get('max_epochs'):
        train_cfg.max_iters += 1
    else:
        train_cfg.max_epochs += crops_per_image(cfg)


def with_indices(dataset: dict, count: int) -> dict:
    """The first ``count`` images of every leaf dataset below ``dataset`` (changed in place and returned)."""
    for leaf in iter_datasets(dataset):
        leaf['indices'] = count
    return dataset


def one_short_schedule(train_cfg: dict, iters: int) -> None:
    """A stage's own ``train_cfg`` (merged over ``train_cfg``): ``iters`` iterations, or one epoch."""
    if 'max_iters' in train_cfg:
        train_cfg['max_iters'] = iters
        train_cfg['val_interval'] = iters
    else:
        train_cfg['max_epochs'] = 1
        train_cfg['val_interval'] = 1


