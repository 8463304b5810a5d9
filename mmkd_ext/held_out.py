"""A held-out part of the training set, for choices that must not be made on the reported split.

AMD selects its teacher assistant and ACMKD ranks its weakest student by accuracy; KD-Zero scores its proxy
distillations ("fitness"). Made on ``val`` (for CIFAR-100 the test set), such a choice is tuned on the data
the result is reported on. Every method therefore holds out every ``every``-th training image ([R] 1 in 10,
the rule of KD-Zero's Cityscapes fitness split): :class:`HeldOutSubset` ``part='train'`` is what trains,
``part='held_out'`` (with the evaluation pipeline) is what chooses, and the two are disjoint by construction.
:func:`held_out_dataloaders` turns a config's train/val dataloaders into that pair.

The wrapper is registered in MMEngine's root ``DATASETS``, so every scope (mmpretrain, mmseg, mmrazor) finds
it and the wrapped dataset is built in the scope it would be built in without the wrapper.
"""
from __future__ import annotations

import copy
from typing import List, Tuple, Union

from mmengine.registry import DATASETS as ENGINE_DATASETS
from torch.utils.data import Dataset

HELD_OUT_EVERY = 10  # [R] 1 training image in 10 is held out (KD-Zero's Cityscapes fitness split)
PARTS = ('train', 'held_out')


def held_out_indices(num_samples: int, every: int = HELD_OUT_EVERY) -> Tuple[List[int], List[int]]:
    """Split ``range(num_samples)`` into training and held-out indices: image i is held out iff i % every == every - 1.

    Args:
        num_samples: size of the training set.
        every: one image in ``every`` is held out (>= 2).

    Returns:
        ``(train, held_out)`` index lists, disjoint, together ``range(num_samples)``.
    """
    if every < 2:
        raise ValueError(f'held-out split: every={every} must be >= 2 (one training image in `every` is held out)')
    train = [i for i in range(num_samples) if i % every != every - 1]
    held = [i for i in range(num_samples) if i % every == every - 1]
    return train, held


@ENGINE_DATASETS.register_module()
class HeldOutSubset(Dataset):
    """The training or the held-out part of a dataset (see the module docstring).

    Args:
        dataset: the full training dataset, or its config (built in the current scope).
        part: ``'train'`` (the images that train) or ``'held_out'`` (the images that choose).
        every: one image in ``every`` is held out ([R] 10).
    """

    def __init__(self, dataset: Union[dict, Dataset], part: str = 'train', every: int = HELD_OUT_EVERY) -> None:
        if part not in PARTS:
            raise ValueError(f'HeldOutSubset: part={part!r} is not one of {PARTS}')
        self.dataset = ENGINE_DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.part, self.every = part, every
        train, held = held_out_indices(len(self.dataset), every)
        self.indices = train if part == 'train' else held
        if not self.indices:
            raise ValueError(f'HeldOutSubset: a dataset of {len(self.dataset)} images has no {part!r} part with '
                             f'every={every}; use a smaller `every` or a larger dataset')

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information (class names, palette) for evaluators."""
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, idx: int):
        return self.dataset[self.indices[idx]]


def _with_pipeline(dataset_cfg: dict, pipeline: list) -> dict:
    """``dataset_cfg`` with its ``pipeline`` replaced (looking through dataset wrappers' ``dataset``)."""
    out = copy.deepcopy(dict(dataset_cfg))
    if 'pipeline' in out:
        out['pipeline'] = copy.deepcopy(pipeline)
    elif isinstance(out.get('dataset'), dict):
        out['dataset'] = _with_pipeline(out['dataset'], pipeline)
    else:
        raise KeyError(f"held-out split: the training dataset {out.get('type')!r} has no `pipeline` to replace by the "
                       'evaluation pipeline; give the held-out dataloader explicitly')
    return out


def held_out_dataloaders(train_dataloader: dict, eval_dataloader: dict,
                         every: int = HELD_OUT_EVERY) -> Tuple[dict, dict]:
    """A config's train dataloader minus the held-out images, and an evaluation dataloader over them.

    Args:
        train_dataloader: the config's ``train_dataloader``.
        eval_dataloader: the config's ``val_dataloader``; its batch size, sampler and dataset pipeline
            (the evaluation transforms) are used for the held-out images.
        every: one training image in ``every`` is held out.

    Returns:
        ``(train, held_out)`` dataloader configs.
    """
    train = copy.deepcopy(dict(train_dataloader))
    if train['dataset'].get('type') == 'HeldOutSubset':
        raise ValueError('held-out split: the train dataloader is already a HeldOutSubset; split it once')
    train['dataset'] = dict(type='HeldOutSubset', dataset=train['dataset'], part='train', every=every)
    return train, held_out_eval_dataloader(train['dataset'], eval_dataloader)


def held_out_eval_dataloader(train_dataset: dict, eval_dataloader: dict) -> dict:
    """The evaluation dataloader over the images a ``HeldOutSubset(part='train')`` dataset config leaves out.

    Args:
        train_dataset: ``dict(type='HeldOutSubset', dataset=..., part='train', every=...)``.
        eval_dataloader: the config's ``val_dataloader`` (batch size, sampler, evaluation pipeline).

    Returns:
        The held-out dataloader config.
    """
    if train_dataset.get('type') != 'HeldOutSubset' or train_dataset.get('part', 'train') != 'train':
        raise ValueError("held-out split: the training dataset must be dict(type='HeldOutSubset', part='train', "
                         'dataset=...) so that the held-out images are not trained on; got '
                         f"{train_dataset.get('type')!r}")
    held = copy.deepcopy(dict(eval_dataloader))
    pipeline = held['dataset'].get('pipeline')
    if pipeline is None:
        raise KeyError('held-out split: val_dataloader.dataset has no `pipeline` (the evaluation transforms for the '
                       'held-out images)')
    held['dataset'] = dict(type='HeldOutSubset', dataset=_with_pipeline(train_dataset['dataset'], pipeline),
                           part='held_out', every=train_dataset.get('every', HELD_OUT_EVERY))
    return held
