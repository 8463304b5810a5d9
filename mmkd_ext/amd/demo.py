"""The AMD row of the demo table: the whole chain on digits, resnet20 -> TA -> resnet20 pruned to 30% FLOPs.

The 30%-scale student is exported with its weights removed; it has about as many parameters and FLOPs
as the demo's resnet8 student (80 k parameters, 12.7 MFLOPs vs 78 k and 12.7 MFLOPs), so its row
compares with the resnet8 rows.
"""
from __future__ import annotations

import os.path as osp
import time
from typing import List

import torch
from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow
from .pipeline import AMDPipeline

CONFIG = osp.join(CONFIG_ROOT, 'amd', 'amd_resnet20_resnet20-p30_1xb32-6e_digits.py')
DEMO_CANDIDATES = 3  # m for the demo (the paper's m = 9 costs 3x more per step)
DEMO_EPOCHS = 4
# One intra-op thread: on the shared 2-core machine the chain took 32 s with 1 thread and 260 s with 2
# (load average ~7); restored afterwards.
DEMO_THREADS = 1


def demo_config(ctx: DemoContext, seed: int) -> Config:
    """The demo AMD config with the context's teacher, seed and a budget of about a minute."""
    cfg = Config.fromfile(CONFIG)
    epochs = 1 if ctx.quick else DEMO_EPOCHS
    iters = epochs * 10  # 300 images / batch 32
    cfg.model.teacher_ckpt = ctx.teacher_ckpt
    cfg.amd.num_candidates = DEMO_CANDIDATES
    cfg.amd.joint_train_cfg = dict(max_epochs=epochs, val_interval=epochs)
    cfg.amd.final_train_cfg = dict(max_epochs=epochs, val_interval=epochs)
    warmup = max(1, iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup),
        dict(type='CosineRestartLR', periods=[iters - warmup], restart_weights=[1.0], eta_min=0.0, by_epoch=False,
             begin=warmup, end=iters)]
    if ctx.quick:  # a smoke test of the chain: fewer candidates and images
        cfg.amd.num_candidates = 2
        cfg.train_dataloader.dataset.indices = 64
        cfg.val_dataloader.dataset.indices = 100
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = 'WARNING'
    cfg.amd.teacher_accuracy = ctx.teacher_accuracy
    return cfg


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Run importance -> joint optimisation -> selection -> final -> export for the first seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow('AMD', ...)`` with the 30%-scale student's top-1 (one seed: the chain costs ~1 min).
    """
    seed = ctx.seeds[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    try:
        start = time.perf_counter()
        state = AMDPipeline(demo_config(ctx, seed), ctx.work_dir('amd', seed), log=lambda *_: None).run()
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    sel, export = state['select_1'], state['export']['student']
    note = (f'resnet20 pruned to {100 * export["measured_scale"]:.0f}% FLOPs ({export["params"] / 1e3:.0f} k params), '
            f'm={len(sel["scales"])}, TA scale {100 * sel["selected_scale"]:.0f}% ({sel["rule"]}), seed {seed} only')
    return [DemoRow('AMD', [float(state['final']['student_accuracy'])], wall, note)]
