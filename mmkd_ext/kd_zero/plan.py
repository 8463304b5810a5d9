"""KD-Zero's run plan: a search config runs a short search (``tools/kd_zero/search.py``: two children, no
generations), then its ``best_distiller_config.py`` trains like any training config."""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict

from ..data_checks import iter_datasets
from ..demo_data.layout import root_lock
from ..run_plans import Plan, Stage, StageContext, reached, register_plan
from .imagenet_subset import FITNESS_ANN, TRAIN_ANN, write_subset


def shorten_proxy(proxy: dict, train_images: int, held_out_every: int) -> None:
    """Proxies of the (already shortened) base schedule, fitness on two images, accept every candidate.

    The stand-in training set has a handful of images: index lists of the real split (held-out fitness images,
    proxy training images) are cut to what exists, and rejection is off (a proxy on random weights and stand-in data
    says nothing about a distiller; the check is that the search runs).
    """
    proxy['fraction'] = 1.0
    proxy['fitness_samples'] = 2
    if proxy.get('held_out_every'):  # fitness on training images held out of the proxies
        proxy['held_out_every'] = held_out_every
    proxy['rejection'] = None
    proxy['min_accuracy'] = 0.0
    loader = proxy.get('fitness_dataloader')
    if loader:
        loader['batch_size'] = 1
        for leaf in iter_datasets(loader['dataset']):
            leaf['indices'] = 2
    train = proxy.get('cfg_options', {}).get('train_dataloader', {})
    if isinstance(train.get('dataset'), dict) and 'indices' in train['dataset']:
        train['dataset']['indices'] = train_images
    if 'batch_size' in train:
        train['batch_size'] = min(train['batch_size'], 2)


def write_search_subsets(proxy: dict) -> str:
    """Write the ImageNet-subset lists a search config reads (``python -m mmkd_ext.kd_zero.imagenet_subset``, the
    user's first step) into the stand-in, at its size: 2 classes x (2 proxy + 1 fitness) images."""
    roots = {leaf.get('data_root') for part in (proxy.get('fitness_dataloader', {}).get('dataset'), )
             if part for leaf in iter_datasets(part) if 'kd_zero_' in str(leaf.get('ann_file', ''))}
    for root in roots:
        with root_lock(root):  # checks running side by side share the stand-in
            if not (osp.isfile(osp.join(root, TRAIN_ANN)) and osp.isfile(osp.join(root, FITNESS_ANN))):
                write_subset(root, num_classes=2, per_class=2, fitness_per_class=1)
    return f'ImageNet subset lists in {sorted(roots)}; ' if roots else ''


def _search(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    with ctx.step('search') as rec:
        cfg = ctx.prepare(ctx.config, 'search')
        base = ctx.prepare(cfg.base_config, 'search_base')  # the proxies build on it: extra hooks reach them
        ctx.limit_train_iterations(base)
        base.work_dir = osp.join(ctx.work_dir, 'search')
        cfg.base_config = ctx.dump(base, 'base_config.py')
        cfg.search.population_size = 2
        cfg.search.iterations = 0
        cfg.search.parents = 2
        cfg.top_k = 1
        shorten_proxy(cfg.proxy, ctx.iters * 2, ctx.held_out_every)
        rec.note = write_search_subsets(cfg.proxy)
        out = ctx.run_tool('tools/kd_zero/search.py', [ctx.dump(cfg, 'search_config.py'), '--work-dir', cfg.work_dir])
        best = out['paths'].get('config')
        rec.note += f"best: {out['best']['genome'] if out.get('best') else None}"
    if best is None:
        raise RuntimeError('the search wrote no best_distiller_config.py')
    return reached(dict(best_config=best), *(['children'] if out.get('claimed') else []))


def _best(ctx: StageContext, outputs: Dict[str, Any]) -> Dict[str, Any]:
    return dict(checkpoint=ctx.check_train(outputs['best_config'], 'best'))


register_plan(Plan('search', lambda cfg: 'search' in cfg and 'base_config' in cfg, (
    Stage('search', _search, tool='tools/kd_zero/search.py', reaches=('children',),
          parts=('children trained on the proxy', 'fitness', 'best_distiller_config.py')),
    Stage('best', _best, parts=('build', 'train', 'val', 'checkpoint', 'resume', 'test'))),
    size_keys=('proxy',)))
