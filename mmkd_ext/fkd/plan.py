"""FKD's run plans: a label config generates its store, then the FKD training config that reads it trains; an FKD
training config first generates the store of the label config that writes it (``tools/fkd/generate_labels.py``)."""
from __future__ import annotations

import glob
import os.path as osp
from typing import Any, Dict, List

from mmengine.config import Config

from ..run_plans import Plan, Stage, StageContext, reached, register_plan

_STORES: Dict[tuple, str] = {}  # label config + check settings -> stand-in store made in this process
SIZE_KEYS = ('fkd_generation', 'label_dataset')


def _training_configs(ctx: StageContext) -> List[str]:
    return sorted(glob.glob(osp.join(ctx.configs_root, 'fkd', 'fkd*.py')))


def _label_configs(ctx: StageContext) -> List[str]:
    return sorted(glob.glob(osp.join(ctx.configs_root, 'fkd', 'labels_*.py')))


def _store_of_labels(path: str) -> str:
    return Config.fromfile(path).fkd_generation.store_dir


def _store_of_training(path: str) -> str:
    return Config.fromfile(path).train_dataloader.dataset.store_dir


def _readers(ctx: StageContext, labels: str) -> List[str]:
    """The FKD training configs that read the store ``labels`` writes."""
    return [p for p in _training_configs(ctx) if _store_of_training(p) == _store_of_labels(labels)]


def generate_labels(ctx: StageContext, path: str) -> str:
    """Label generation of the label config ``path``, shortened (reused when this process made it already)."""
    key = (osp.abspath(path), ctx.settings())
    if key in _STORES and osp.isdir(_STORES[key]):  # the same stand-in labels, made by an earlier check
        ctx.log(f'[check] labels     reused {_STORES[key]}')
        return _STORES[key]
    with ctx.step('labels') as rec:
        cfg = ctx.prepare(path, 'labels')
        store = osp.join(cfg.work_dir, 'store')
        cfg.fkd_generation.store_dir = store
        if ctx.teacher_ckpt:
            cfg.teachers[0]['checkpoint'] = ctx.teacher_ckpt
        crops = max([int(Config.fromfile(p).train_dataloader.dataset.crops_per_image)
                     for p in _readers(ctx, path)] or [1])
        cfg.fkd_generation.num_crops = min(cfg.fkd_generation.num_crops, 2 * crops)
        cfg.label_dataset['indices'] = ctx.iters * 2
        report = ctx.run_tool('tools/fkd/generate_labels.py', [ctx.dump(cfg, 'labels_config.py'), '--no-progress'])
        rec.note = f'{report.images} images x {cfg.fkd_generation.num_crops} crops'
    _STORES[key] = store
    return store


def _train_on(ctx: StageContext, path: str, store: str) -> Dict[str, Any]:
    def set_store(cfg: Config) -> None:
        cfg.train_dataloader.dataset.store_dir = store
        if 'store_dir' in cfg:
            cfg.store_dir = store
    return dict(checkpoint=ctx.check_train(path, 'train', prepare=set_store))


def _labels_of_label_config(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    readers = _readers(ctx, ctx.config)
    if not readers:
        raise RuntimeError(f'no FKD training config in {ctx.configs_root}/fkd reads the store of {ctx.config}')
    return dict(store=generate_labels(ctx, ctx.config), training_config=readers[0])


def _labels_of_training_config(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    wanted = _store_of_training(ctx.config)
    sources = [p for p in _label_configs(ctx) if _store_of_labels(p) == wanted]
    if not sources:
        raise RuntimeError(f'no label config in {ctx.configs_root}/fkd writes the store {wanted!r}')
    return dict(store=generate_labels(ctx, sources[0]), training_config=ctx.config)


def _training(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    return reached(_train_on(ctx, outputs['training_config'], outputs['store']), 'stored labels')


TRAINING = Stage('training', _training, reaches=('stored labels',),
                 parts=('build', 'train', 'val', 'checkpoint', 'resume', 'test'))
def _is_label_config(cfg: Config) -> bool:
    return 'teachers' in cfg and 'fkd_generation' in cfg


register_plan(Plan('labels', _is_label_config,
                   (Stage('labels', _labels_of_label_config, tool='tools/fkd/generate_labels.py'), TRAINING),
                   size_keys=SIZE_KEYS))


def _is_training_config(cfg: Config) -> bool:
    return 'FKD' in str(cfg.get('train_cfg', {}).get('type', '')) and not _is_label_config(cfg)


register_plan(Plan('fkd', _is_training_config,
                   (Stage('labels', _labels_of_training_config, tool='tools/fkd/generate_labels.py'), TRAINING),
                   size_keys=SIZE_KEYS))
