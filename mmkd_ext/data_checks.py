"""Pre-flight check of the dataset roots a config reads, before any model is built.

A missing dataset otherwise surfaces as a bare ``FileNotFoundError`` deep in a dataset class (or, for CIFAR, as an
attempted download). :func:`check_dataset_roots` names the root, the expected layout and the command or page that
makes it.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Iterator, List, Tuple

from .demo_data.layout import MAKE_COMMAND, DemoDataMissing

PREPARE_DOC = 'see README.md, "Datasets"'
LAYOUTS = {
    'CustomDataset': '<data_root>/<data_prefix>/<class name>/<image> (ImageFolder) or an ann_file list',
    'ImageNet': '<data_root>/{train,val}/... with meta/{train,val}.txt',
    'CIFAR100': '<data_root>/cifar-100-python/{train,test,meta}',
    'CIFAR10': '<data_root>/cifar-10-batches-py/{data_batch_1..5,test_batch}',
    'CocoDataset': '<data_root>/annotations/instances_{train,val}*.json and <data_root>/<data_prefix.img>/<image>',
    'CityscapesDataset': ('<data_root>/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and '
                          '<data_root>/gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png'),
}
CIFAR_FOLDERS = {'CIFAR100': 'cifar-100-python', 'CIFAR10': 'cifar-10-batches-py'}


def iter_datasets(dataset: Dict) -> Iterator[Dict]:
    """The leaf dataset configs of ``dataset``, looking through wrappers (``dataset``/``datasets`` keys)."""
    if 'dataset' in dataset and isinstance(dataset['dataset'], dict):
        yield from iter_datasets(dataset['dataset'])
    elif 'datasets' in dataset:
        for child in dataset['datasets']:
            yield from iter_datasets(child)
    else:
        yield dataset


def required_paths(dataset: Dict) -> List[str]:
    """Paths that must exist for ``dataset`` (only for the dataset types of :data:`LAYOUTS`)."""
    kind = str(dataset.get('type', '')).split('.')[-1]
    root = dataset.get('data_root', '') or ''
    prefix = dataset.get('data_prefix', '')
    paths = [root] if root else []
    if kind in CIFAR_FOLDERS:
        paths.append(osp.join(root, CIFAR_FOLDERS[kind]))
    elif kind in ('CustomDataset', 'ImageNet'):
        if dataset.get('ann_file'):
            paths.append(osp.join(root, dataset['ann_file']))
        if isinstance(prefix, str) and prefix:
            paths.append(osp.join(root, prefix))
    elif kind == 'CocoDataset':
        paths.append(osp.join(root, dataset.get('ann_file', '')))
        if isinstance(prefix, dict) and prefix.get('img'):
            paths.append(osp.join(root, prefix['img']))
    elif kind == 'CityscapesDataset' and isinstance(prefix, dict):
        paths += [osp.join(root, p) for p in prefix.values()]
    return paths


def check_dataset_roots(cfg, loaders: Tuple[str, ...] = ('train_dataloader', 'val_dataloader', 'test_dataloader')):
    """Raise :class:`DemoDataMissing` for the first dataset of ``loaders`` whose files are missing.

    Args:
        cfg: a full MMEngine config.
        loaders: which dataloaders to check.
    """
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if not loader_cfg or 'dataset' not in loader_cfg:
            continue
        for dataset in iter_datasets(loader_cfg['dataset']):
            kind = str(dataset.get('type', '')).split('.')[-1]
            if kind not in LAYOUTS:
                continue
            missing = [p for p in required_paths(dataset) if not osp.exists(p)]
            if missing:
                root = dataset.get('data_root', '')
                how = (f'create it with: {MAKE_COMMAND}' if 'demo' in str(root) else
                       f'download the dataset and place it there ({PREPARE_DOC})')
                raise DemoDataMissing(
                    f'{loader}: {kind} at {root!r} is missing {missing}; expected layout: {LAYOUTS[kind]}; {how}')
