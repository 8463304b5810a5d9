"""FKD training data: replay stored crops, m crops of one image per mini-batch (paper Sec. 3.3).

``FKDDataset`` wraps an ordinary mmpretrain dataset whose pipeline only loads the image. Item ``i``
is the list of ``m`` samples cut from image ``i`` at stored crops (``FKDReplayCrop``) with their
recovered soft labels under ``label_key`` (``gt_score`` by default, which mmpretrain's
``PackInputs`` and ``ClsDataPreprocessor`` carry, and its ``Mixup``/``CutMix`` batch augments mix
with the same lambda as the images). ``fkd_collate`` flattens the lists, so a dataloader with
``batch_size=B`` yields ``B * m`` crops of ``B`` images: each step decodes B images and reads B label
records, which is FKD's data-loading saving.

Which m of the M stored crops an image gets each time it is loaded:

* ``'random'`` ([X] official, default): m distinct crops drawn afresh each time, independently per pass.
* ``'non_overlap'`` ([R] METHODS.md 4.8 F2): a per-image permutation of the M crops cycled over
  passes, so no crop repeats before all M were used (the "ideal" exact-KD setting). It needs the
  pass index: :class:`~mmkd_ext.fkd.loops.FKDEpochBasedTrainLoop` calls :meth:`FKDDataset.set_epoch`,
  and ``persistent_workers`` must be False so workers see it.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import FUNCTIONS

from ..registry import PRETRAIN_DATASETS, PRETRAIN_TRANSFORMS
from .crops import coords_to_box, crop_resize
from .store import LabelStore, LabelStoreError, sha256_file

SAMPLINGS = ('random', 'non_overlap')


@PRETRAIN_TRANSFORMS.register_module()
class FKDReplayCrop(BaseTransform):
    """Cut the stored crop ``results['fkd_coords']`` out of ``results['img']``, resize, flip if stored.

    Required keys: ``img``, ``fkd_coords`` (4,) relative (top, left, h, w), ``fkd_flip`` (bool).
    Modified keys: ``img``, ``img_shape``; added: ``flip``, ``flip_direction``.

    Args:
        scale: output size, int or (h, w) ([X] 224 for the ImageNet student).
        interpolation: ``'bilinear'`` ([X] student crops) or any of :data:`mmkd_ext.fkd.crops.INTERPOLATIONS`.
    """

    def __init__(self, scale: Union[int, Sequence[int]], interpolation: str = 'bilinear') -> None:
        self.size = (scale, scale) if isinstance(scale, int) else tuple(scale)
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        if 'fkd_coords' not in results:
            raise KeyError('FKDReplayCrop needs results["fkd_coords"]; use it inside an FKDDataset pipeline')
        img = results['img']
        box = coords_to_box(results['fkd_coords'], img.shape[0], img.shape[1])
        flip = bool(results['fkd_flip'])
        results['img'] = crop_resize(img, box, self.size, flip, self.interpolation)
        results['img_shape'] = results['img'].shape[:2]
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale={self.size}, interpolation={self.interpolation!r})'


@FUNCTIONS.register_module()
def fkd_collate(batch: Sequence[List[dict]]) -> dict:
    """Flatten ``B`` lists of ``m`` samples into one batch of ``B * m`` (then ``pseudo_collate``)."""
    return pseudo_collate([sample for group in batch for sample in group])


@PRETRAIN_DATASETS.register_module()
class FKDDataset:
    """Replay a label store over a dataset: item ``i`` = ``m`` crops of image ``i`` with soft labels.

    Args:
        dataset: config (or instance) of the image dataset; its pipeline must yield the uncropped
            image under ``'img'`` (e.g. ``[dict(type='LoadImageFromFile')]``), in the dataset order the
            store was generated with.
        store_dir: the label store (tools/fkd/generate_labels.py).
        crops_per_image: m, crops of one image in a mini-batch ([P] default 4).
        pipeline: per-crop transforms; must contain ``FKDReplayCrop`` and end with ``PackInputs``.
            Other augmentations (colour jitter...) after the crop are applied on the fly ([P] option b).
        label_key: where the recovered soft label goes: ``'gt_score'`` for FKD training, another key
            (packed with ``PackInputs(algorithm_keys=[...])``) for a :class:`StoredTeacher`.
        sampling: ``'random'`` or ``'non_overlap'`` (see the module docstring).
        verify: store verification, ``'full'`` (with checksums) or ``'quick'``.
        teacher_checkpoints: optional checkpoint paths the store must have been generated with
            (their sha256 are compared with the manifest).
        seed: seed of the ``'non_overlap'`` permutations.
        input_size: the teacher input size (px, int or (h, w)) the store must have been generated at (the label
            config's ``fkd_generation.input_size``); None: not checked (a teacher at another resolution than the
            student, e.g. 475 px labels for 224 px crops).
        flip_prob: the flip probability the store must have been generated with (``fkd_generation.flip_prob``);
            None: not checked.
    """

    def __init__(self, dataset: Union[dict, object], store_dir: str, pipeline: Sequence[dict],
                 crops_per_image: int = 4, label_key: str = 'gt_score', sampling: str = 'random',
                 verify: str = 'full', teacher_checkpoints: Optional[Sequence[str]] = None, seed: int = 0,
                 input_size: Optional[Union[int, Sequence[int]]] = None, flip_prob: Optional[float] = None) -> None:
        self.dataset = PRETRAIN_DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if sampling not in SAMPLINGS:
            raise ValueError(f'FKDDataset sampling must be one of {SAMPLINGS}, got {sampling!r}')
        if not any(_type_name(t) == 'FKDReplayCrop' for t in pipeline):
            raise ValueError('FKDDataset pipeline needs an FKDReplayCrop(scale=...) transform to replay the stored '
                             f'crops; got {[_type_name(t) for t in pipeline]}')
        self.store = LabelStore(store_dir, verify=verify)
        check_generation_settings(self.store, input_size, flip_prob)
        from .generation import dataset_fingerprint
        self.store.check_dataset(dataset_fingerprint(self.dataset))
        if teacher_checkpoints:
            for path in teacher_checkpoints:
                if not osp.isfile(path):
                    raise FileNotFoundError(f'teacher checkpoint {path!r} (FKDDataset.teacher_checkpoints) not found')
            self.store.check_teacher(dict(checkpoints=[sha256_file(p) for p in teacher_checkpoints]))
        if not 1 <= crops_per_image <= self.store.num_crops:
            raise ValueError(f'crops_per_image must be in [1, M={self.store.num_crops}] (crops stored per image in '
                             f'{store_dir!r}), got {crops_per_image}')
        self.crops_per_image = crops_per_image
        self.pipeline = Compose(pipeline)
        self.label_key = label_key
        self.sampling = sampling
        self.seed = seed
        self.epoch = 0

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    @property
    def num_classes(self) -> int:
        return self.store.codec.num_classes

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        """The pass index (used by ``sampling='non_overlap'``)."""
        self.epoch = epoch

    def crop_ids(self, index: int) -> np.ndarray:
        """Which of the M stored crops image ``index`` uses this time (m distinct ids)."""
        m, total = self.crops_per_image, self.store.num_crops
        if self.sampling == 'random':
            return np.random.choice(total, m, replace=False)
        perm = np.random.default_rng([self.seed, index]).permutation(total)
        start = (self.epoch * m) % total
        return np.take(perm, np.arange(start, start + m), mode='wrap')

    def __getitem__(self, index: int) -> List[dict]:
        base = self.dataset[index]
        if 'img' not in base:
            raise KeyError('the dataset inside FKDDataset must yield the raw image under "img": give it a '
                           'loading-only pipeline, e.g. [dict(type="LoadImageFromFile")], and put FKDReplayCrop '
                           'and PackInputs in FKDDataset.pipeline')
        crops = self.store.crops(index)
        ids = self.crop_ids(index)
        labels = self.store.codec.decode(crops.indices[ids], crops.values[ids])
        samples = []
        for j, crop_id in enumerate(ids):
            results = dict(base, img=base['img'], fkd_coords=crops.coords[crop_id], fkd_flip=bool(crops.flips[crop_id]),
                           fkd_crop_id=int(crop_id))
            results[self.label_key] = labels[j]
            samples.append(self.pipeline(results))
        return samples


def check_generation_settings(store: LabelStore, input_size: Optional[Union[int, Sequence[int]]],
                              flip_prob: Optional[float]) -> None:
    """Refuse a store generated at another teacher input size or flip probability than the training expects.

    Args:
        store: the opened label store (its manifest records ``input_size`` and ``crop.flip_prob``).
        input_size: expected (h, w) or int; None skips the check.
        flip_prob: expected flip probability; None skips the check.

    Raises:
        LabelStoreError: names the setting, both values and the store.
    """
    stored_size = tuple(store.manifest['input_size'])
    stored_flip = store.manifest['crop']['flip_prob']
    problems = []
    if input_size is not None:
        wanted = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if wanted != stored_size:
            problems.append(f'input_size: the store was generated at {list(stored_size)}, the training expects '
                            f'{list(wanted)}')
    if flip_prob is not None and float(flip_prob) != float(stored_flip):
        problems.append(f'flip_prob: the store was generated with {stored_flip}, the training expects {flip_prob}')
    if problems:
        raise LabelStoreError(f'label store {store.store_dir!r} was made with other crop settings than this '
                              f'training expects ({"; ".join(problems)}). Generate the labels with the settings of '
                              'the training (tools/fkd/generate_labels.py) or point store_dir at a matching store')


def _type_name(transform) -> str:
    t = transform.get('type') if isinstance(transform, dict) else type(transform)
    return t if isinstance(t, str) else getattr(t, '__name__', str(t))


__all__ = ['FKDDataset', 'FKDReplayCrop', 'fkd_collate', 'LabelStoreError']
