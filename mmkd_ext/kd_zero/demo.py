"""KD-Zero row of the demo table: a tiny distiller search on the digits pair, then distillation with the best genome."""
from __future__ import annotations

import os.path as osp
import time
from typing import List

from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, train_config
from .genome import Genome
from .search import search_from_config

SEARCH_CONFIG = osp.join(CONFIG_ROOT, 'kd_zero', 'search_kd_zero_resnet20_resnet8x0.5_digits.py')
# Demo budget (the whole row must stay near a minute on 2 CPU cores): 3 + 1 candidates of one epoch each, drawn
# from a sub-space where most candidates train (the full space rejects most random draws, which costs minutes).
DEMO_SEARCH = dict(population_size=3, iterations=1, parents=2, shrink_interval=1)
QUICK_SEARCH = dict(population_size=2, iterations=1, parents=2, shrink_interval=1)
DEMO_SPACE = dict(knowledge=('feature', 'logits'), distances=('kl', 'l2', 'cosine', 'pearson'), taus=(1.0, 4.0),
                  weights=(0.5, 1.0, 2.0, 5.0))
DEMO_SEEDS = 1  # final distillations (one per seed) that fit in the budget after the search


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Search (evolution, tiny budget), then distil resnet20 -> resnet8 with the best genome.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow('KD-Zero', ...)``; the note names the searched genome and the rejection savings.
    """
    start = time.perf_counter()
    cfg = Config.fromfile(SEARCH_CONFIG)
    cfg.search.update(QUICK_SEARCH if ctx.quick else DEMO_SEARCH)
    cfg.search_space.update(DEMO_SPACE)
    cfg.proxy.fraction = 1 / 30  # one epoch per candidate
    cfg.proxy.rejection.check_iter = 10
    cfg.proxy.min_accuracy = 0.0  # after 10 iterations every student is still near chance: no signal to reject on
    cfg.proxy.fitness_samples = 100
    cfg.proxy.fitness_dataloader.dataset.indices = list(range(0, 500, 5))  # all classes
    cfg.proxy.cfg_options = dict(model=dict(teacher_ckpt=ctx.teacher_ckpt))
    search_dir = osp.join(ctx.work_root, 'kd_zero_search')
    out = search_from_config(cfg, search_dir, resume=False, progress=False)
    if out['best'] is None:
        raise RuntimeError(f'the demo KD-Zero search found no accepted candidate; see {search_dir}/candidates.json')
    config = out['paths']['config']
    accs = []
    options = dict(model=dict(teacher_ckpt=ctx.teacher_ckpt))
    if ctx.quick:
        options.update(train_cfg=dict(max_epochs=3), param_scheduler=[dict(type='CosineAnnealingLR', T_max=3,
                                                                             by_epoch=True, eta_min=0.0)])
    for seed in list(ctx.seeds)[:DEMO_SEEDS]:
        accs.append(train_config(config, ctx.work_dir('kd_zero', seed), options, seed).accuracy)
    savings = out['savings']
    note = (f"searched {savings['candidates']} candidates ({savings['rejected']} rejected, "
            f"{savings['saved_fraction']:.0%} proxy iters saved); best: {Genome.from_dict(out['best']['genome'])}")
    return [DemoRow('KD-Zero', accs, time.perf_counter() - start, note)]
