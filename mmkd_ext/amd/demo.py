"""The AMD row of the demo table: the whole chain on digits, resnet20 -> TA -> resnet20 pruned to 30% FLOPs.

The 30%-scale student is exported with its weights removed; it has about as many parameters and FLOPs
as the demo's resnet8 student (80 k parameters, 12.7 MFLOPs vs 78 k and 12.7 MFLOPs), so its row
compares with the resnet8 rows.
"""
from __future__ import annotations

import os.path as osp
import shutil
import time
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, RowPlan
from ..held_out import HELD_OUT_EVERY
from .pipeline import AMDPipeline, chain_inputs, read_chain_inputs

CONFIG = osp.join(CONFIG_ROOT, 'amd', 'amd_resnet20_resnet20-p30_1xb32-6e_digits.py')
DEMO_CANDIDATES = 3  # m for the demo (the paper's m = 9 costs 3x more per step)
DEMO_EPOCHS = 4
# One intra-op thread: on the shared 2-core machine the chain took 32 s with 1 thread and 260 s with 2
# (load average ~7); restored afterwards.
DEMO_THREADS = 1
# Seeds of the AMD row: all of the demo's (None), as every row; the first runs the chain, the others re-run only the
# seed-dependent stages (about 20 s each on a quiet machine).
DEMO_SEEDS = None


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
    cfg.amd.selection.update(split='held_out', held_out_every=HELD_OUT_EVERY)  # the TA is never chosen on val
    cfg.default_hooks.checkpoint.save_best = None  # the stages' final models are used: no 'best' checkpoint on val
    cfg.log_level = 'WARNING'
    cfg.amd.teacher_accuracy = ctx.teacher_accuracy
    return cfg


def plans(ctx: DemoContext) -> List[RowPlan]:
    """The AMD row's plan: the final distillation (TA -> pruned student) on every training image; the joint stage
    (m candidates per step, on the training images minus the held-out tenth that selects the TA) comes on top."""
    cfg = demo_config(ctx, 0)
    final, joint = cfg.amd.final_train_cfg.max_epochs, cfg.amd.joint_train_cfg.max_epochs
    every = cfg.amd.selection.held_out_every
    options = dict(train_cfg=dict(max_epochs=final, val_interval=final),
                   train_dataloader=dict(dataset=dict(indices=cfg.train_dataloader.dataset.get('indices'))),
                   default_hooks=dict(checkpoint=dict(save_best=cfg.default_hooks.checkpoint.save_best)))
    per_epoch = -(-(RowPlan('amd', '', CONFIG, options).budget()['images'] * (every - 1) // every)
                  // cfg.train_dataloader.batch_size)
    return [RowPlan('amd', 'AMD (resnet20 pruned to 30% FLOPs, 80 k params)', CONFIG, options,
                    teacher=f'{joint} joint + {final} final (from the TA)',
                    chosen_on=f'TA: 1 in {every} train images held out of the joint stage',
                    extra_steps=f'joint: {joint * per_epoch} ({cfg.amd.num_candidates} candidates)')]


def drop_stale_chain(work_dir: str, cfg: Config) -> None:
    """Delete a demo chain computed from another teacher or settings (a second ``make demo`` retrains the
    teacher); a chain of the same inputs is kept and resumed."""
    saved = read_chain_inputs(work_dir)
    if saved is not None and saved != chain_inputs(cfg):
        shutil.rmtree(work_dir)


def _chain(ctx: DemoContext, seed: int, first: Optional[AMDPipeline] = None) -> Tuple[AMDPipeline, str]:
    """One seed of the chain; later seeds reuse what does not depend on the seed.

    With a TA above the target, the final distillation alone is re-run (importance, joint network and
    selection of the first seed are reused). When the target itself was selected the joint network holds
    the student, so the joint stage (and the selection) is re-run; the L1 importance is reused.

    Returns:
        The finished pipeline and what was re-run for this seed.
    """
    cfg, work_dir = demo_config(ctx, seed), ctx.work_dir('amd', seed)
    drop_stale_chain(work_dir, cfg)
    pipe = AMDPipeline(cfg, work_dir, log=lambda *_: None)
    rerun = 'all stages'
    if first is not None:
        n = first.amd['num_ta']
        if first.state.data['final'].get('trained'):
            reused, rerun = ['importance'] + [f'{k}_{i}' for i in range(1, n + 1) for k in ('joint', 'select')], 'final'
        else:
            reused, rerun = ['importance'], 'joint+selection'
        pipe.reuse(first, [s for s in reused if not pipe.state.done(s)])
    pipe.run()
    return pipe, rerun


def run_demo(ctx: DemoContext, seeds: Optional[int] = DEMO_SEEDS) -> List[DemoRow]:
    """Run importance -> joint optimisation -> selection -> final -> export, then later seeds cheaply.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).
        seeds: how many of ``ctx.seeds`` to run (None: all); seeds after the first re-run only the
            seed-dependent stages (see :func:`_chain`).

    Returns:
        One ``DemoRow('AMD', ...)`` with the 30%-scale student's top-1 for every seed.
    """
    run_seeds = list(ctx.seeds)[:seeds] if seeds is not None else list(ctx.seeds)
    if not run_seeds:
        raise ValueError(f'the AMD demo needs at least one seed, got ctx.seeds={list(ctx.seeds)} and seeds={seeds}')
    threads = torch.get_num_threads()
    torch.set_num_threads(DEMO_THREADS)
    pipes, rerun = [], 'all stages'
    try:
        start = time.perf_counter()
        for seed in run_seeds:
            pipe, rerun = _chain(ctx, seed, pipes[0] if pipes else None)
            pipes.append(pipe)
        wall = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    state = pipes[0].state.data
    sel, export = state['select_1'], state['export']['student']
    ta = sorted({f'{100 * p.state.data["select_1"]["selected_scale"]:.0f}%' for p in pipes})
    note = (f'resnet20 pruned to {100 * export["measured_scale"]:.0f}% FLOPs ({export["params"] / 1e3:.0f} k params), '
            f'm={len(sel["scales"])}, TA scale {"/".join(ta)} ({sel["rule"]}), seeds {run_seeds}')
    if len(pipes) > 1:
        note += f' (later seeds re-run: {rerun})'
    plan = plans(ctx)[0]
    return [DemoRow(plan.name, [float(p.state.data['final']['student_accuracy']) for p in pipes], wall, note, run_seeds,
                    budget=plan.budget())]
