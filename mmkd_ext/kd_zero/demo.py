"""KD-Zero row of the demo table: a tiny distiller search on the digits pair, then distillation with the best genome.

The search's fitness is measured on 1 in 5 training images (``proxy.held_out_every`` of the search config) that
its proxies do not train on (:mod:`mmkd_ext.held_out`), never on the validation split the row is reported on; the
final distillation trains on all 300 images for the 300 steps of every row.
"""
from __future__ import annotations

import os.path as osp
import time
from typing import List

from mmengine.config import Config

from ..demo_runner import (
    CONFIG_ROOT,
    STUDENT_VAL,
    DemoContext,
    DemoRow,
    RowPlan,
    deep_merge,
    demo_epochs,
    final_only,
    train_plan,
)
from .genome import Genome
from .search import search_from_config

SEARCH_CONFIG = osp.join(CONFIG_ROOT, 'kd_zero', 'search_kd_zero_resnet20_resnet8x0.5_digits.py')
FINAL_CONFIG = osp.join(CONFIG_ROOT, 'kd_zero', 'kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py')
# Demo budget: 4 + 2 candidates (one generation) with the search config's proxy (20% of the schedule: 60
# iterations, the shortest after which the resnet8x0.5 student is off chance), drawn from a sub-space where most
# candidates train (the full space rejects most random draws, which costs minutes) and that holds feature knowledge
# only: the paper's analysis of its searched distillers (Sec. 3.3, Fig. 5) finds feature knowledge superior, and with
# so few candidates the search cannot afford to rediscover that.
DEMO_SEARCH = dict(population_size=4, iterations=1, parents=2, shrink_interval=1, offspring_per_generation=2)
QUICK_SEARCH = dict(population_size=2, iterations=1, parents=2, shrink_interval=1, offspring_per_generation=1)
DEMO_SPACE = dict(knowledge=('feature', ), distances=('kl', 'l2', 'cosine', 'pearson'), taus=(1.0, 4.0),
                  weights=(0.5, 1.0, 2.0, 5.0))


def plans(ctx: DemoContext) -> List[RowPlan]:
    """The KD-Zero row's final distillation (the searched config inherits ``FINAL_CONFIG`` and replaces only the
    distiller, so its budget is this plan's)."""
    options = deep_merge(final_only(demo_epochs(ctx.quick)),
                         dict(model=dict(teacher_ckpt=ctx.teacher_ckpt), **STUDENT_VAL))
    every = Config.fromfile(SEARCH_CONFIG).proxy.held_out_every
    return [RowPlan('kd_zero', 'KD-Zero (searched feature distiller + CE)', FINAL_CONFIG, options,
                    chosen_on=f'genome: fitness on 1 in {every} train images held out of the proxies',
                    extra_steps=f'search: 60 per proxy ({300 - 300 // every} images)')]


def search(ctx: DemoContext) -> dict:
    """The demo's distiller search (tiny budget); fitness on held-out training images.

    Returns:
        ``search_from_config``'s output (best genome, paths, savings).
    """
    cfg = Config.fromfile(SEARCH_CONFIG)
    cfg.search.update(QUICK_SEARCH if ctx.quick else DEMO_SEARCH)
    cfg.search_space.update(DEMO_SPACE)
    if ctx.quick:  # tests: one-epoch proxies, no accuracy rule (after 10 iterations every student is near chance)
        cfg.proxy.update(fraction=1 / 30, min_accuracy=0.0)
        cfg.proxy.rejection.check_iter = 10
    cfg.proxy.cfg_options = dict(model=dict(teacher_ckpt=ctx.teacher_ckpt))
    search_dir = osp.join(ctx.work_root, 'kd_zero_search')
    out = search_from_config(cfg, search_dir, resume=False, progress=False)
    if out['best'] is None:
        raise RuntimeError(f'the demo KD-Zero search found no accepted candidate; see {search_dir}/candidates.json')
    return out


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Search (evolution, tiny budget), then distil resnet20 -> resnet8x0.5 with the best genome, once per seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow``; the note names the searched genome and the rejection savings.
    """
    start = time.perf_counter()
    out = search(ctx)
    savings = out['savings']
    note = (f"searched {savings['candidates']} candidates ({savings['rejected']} rejected, "
            f"{savings['saved_fraction']:.0%} proxy iters saved); best: {Genome.from_dict(out['best']['genome'])}")
    row = train_plan(plans(ctx)[0], ctx, note, config=out['paths']['config'])
    row.wall_s = time.perf_counter() - start
    return [row]
