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
# Demo budget (the row must stay within a few minutes on 2 CPU cores, one process): 4 + 2 candidates with the search
# config's proxy (20% of the schedule: 60 iterations, the shortest after which the resnet8x0.5 student is off chance),
# drawn from a sub-space where most candidates train (the full space rejects most random draws, which costs minutes)
# and that holds feature knowledge only: the paper's analysis of its searched distillers (Sec. 3.3, Fig. 5) finds
# feature knowledge superior, and with so few candidates the search cannot afford to rediscover that.
DEMO_SEARCH = dict(population_size=5, iterations=3, parents=2, shrink_interval=3, offspring_per_generation=2)
QUICK_SEARCH = dict(population_size=2, iterations=1, parents=2, shrink_interval=1, offspring_per_generation=1)
DEMO_SPACE = dict(knowledge=('feature', ), distances=('kl', 'l2', 'cosine', 'pearson'), taus=(1.0, 4.0),
                  weights=(0.5, 1.0, 2.0, 5.0))


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Search (evolution, tiny budget), then distil resnet20 -> resnet8x0.5 with the best genome.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow('KD-Zero', ...)``; the note names the searched genome and the rejection savings.
    """
    start = time.perf_counter()
    cfg = Config.fromfile(SEARCH_CONFIG)
    cfg.search.update(QUICK_SEARCH if ctx.quick else DEMO_SEARCH)
    cfg.search_space.update(DEMO_SPACE)
    cfg.proxy.fitness_samples = 100
    cfg.proxy.fitness_dataloader.dataset.indices = list(range(0, 500, 5))  # all classes
    if ctx.quick:  # tests: one-epoch proxies, no accuracy rule (after 10 iterations every student is near chance)
        cfg.proxy.update(fraction=1 / 30, min_accuracy=0.0)
        cfg.proxy.rejection.check_iter = 10
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
    for seed in ctx.seeds:  # one final distillation per seed of the demo, as every row
        accs.append(train_config(config, ctx.work_dir('kd_zero', seed), options, seed).accuracy)
    savings = out['savings']
    note = (f"searched {savings['candidates']} candidates ({savings['rejected']} rejected, "
            f"{savings['saved_fraction']:.0%} proxy iters saved); best: {Genome.from_dict(out['best']['genome'])}")
    return [DemoRow('KD-Zero', accs, time.perf_counter() - start, note, list(ctx.seeds))]
