"""The FKD row of the demo table: generate the label store once, then train the student teacher-free.

The paper's setting that "exactly replicates vanilla KD" (METHODS.md FKD, F2): M = 30 stored crops per image (the
labels config's M = #epochs), one crop per image per step (m = 1, batch 32: the 300 steps of every row) and
non-overlapping sampling, so each stored crop trains exactly once. What differs from the KD rows is what the paper
changes: random-resized crops labelled once by the teacher (stored, top-5 marginal smoothing) and its loss, soft
labels at T=1 without a hard-label term (the KD row "T=1, no CE" has the same loss with live labels).
"""
from __future__ import annotations

import os.path as osp
import time
from typing import List

from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, RowPlan, deep_merge, demo_epochs, final_only, train_plan
from .generation import generate_labels
from .store import sha256_file

LABEL_CONFIG = osp.join(CONFIG_ROOT, 'fkd', 'labels_resnet20_m30-ms5_digits.py')
TRAIN_CONFIG = osp.join(CONFIG_ROOT, 'fkd', 'fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py')
CROPS_PER_STEP = 1  # m: one crop per image and step, 32 images per step, as every other row


def store_dir(ctx: DemoContext) -> str:
    """One store per teacher checkpoint: a second `make demo` retrains the teacher (new weights), and the store of
    the first run must neither be reused with them nor block the run; the same teacher resumes/reuses its store."""
    return osp.join(ctx.work_root, f'fkd_labels_{sha256_file(ctx.teacher_ckpt)[:12]}')


def plans(ctx: DemoContext, store: str = '<label store>') -> List[RowPlan]:
    """The FKD row's plan: M = epochs stored crops per image, m = 1, non-overlapping sampling, 300 steps."""
    epochs = demo_epochs(ctx.quick)
    final = final_only(epochs)
    final['train_cfg'] = dict(type='FKDEpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs)
    options = deep_merge(final, dict(train_dataloader=dict(
        batch_size=32 // CROPS_PER_STEP,
        dataset=dict(store_dir=store, crops_per_image=CROPS_PER_STEP, sampling='non_overlap'))))
    return [RowPlan('fkd', 'FKD (M=30 stored crops, T=1, no CE: the paper)', TRAIN_CONFIG, options,
                    views=f'{epochs} stored random-resized crops (scale 0.5-1), each used once',
                    teacher=f'{epochs} (once, stored; not per seed)')]


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Label the 300 digits training images with the demo teacher (M = epochs crops each), then train resnet8x0.5
    by FKD per seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow``; its wall time includes label generation (done once for all seeds).
    """
    cfg = Config.fromfile(LABEL_CONFIG)
    cfg.teachers[0].checkpoint = ctx.teacher_ckpt
    store = store_dir(ctx)
    cfg.fkd_generation.update(store_dir=store, num_crops=demo_epochs(ctx.quick))
    start = time.perf_counter()
    report = generate_labels(cfg, progress=False, log=lambda *_: None)
    gen_s = time.perf_counter() - start
    plan = plans(ctx, store)[0]
    bytes_per_crop = report.manifest['bytes_per_crop'] if report.manifest else float('nan')
    note = f'labels once: {gen_s:.0f}s for {report.crops} crops ({bytes_per_crop:.0f} B/crop)'
    row = train_plan(plan, ctx, note)
    row.wall_s += gen_s
    return [row]
