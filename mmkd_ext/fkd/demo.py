"""The FKD row of the demo table: generate the label store once, then train the student teacher-free."""
from __future__ import annotations

import os.path as osp
import time
from typing import List

from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, train_config
from .generation import generate_labels
from .store import sha256_file

LABEL_CONFIG = osp.join(CONFIG_ROOT, 'fkd', 'labels_resnet20_m30-ms5_digits.py')
TRAIN_CONFIG = osp.join(CONFIG_ROOT, 'fkd', 'fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py')
DEMO_CROPS = 8  # M for the demo: the config's M=30 costs ~4x the generation time (~90 s on a busy 2-core CPU)


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Label the 300 digits training images with the demo teacher, then train resnet8 by FKD per seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        One ``DemoRow('FKD', ...)``; its wall time includes label generation (done once for all seeds).
    """
    cfg = Config.fromfile(LABEL_CONFIG)
    cfg.teachers[0].checkpoint = ctx.teacher_ckpt
    # one store per teacher checkpoint: a second `make demo` retrains the teacher (new weights), and the store of the
    # first run must neither be reused with them nor block the run; the same teacher resumes/reuses its store
    store_dir = osp.join(ctx.work_root, f'fkd_labels_{sha256_file(ctx.teacher_ckpt)[:12]}')
    cfg.fkd_generation.update(store_dir=store_dir, num_crops=2 if ctx.quick else DEMO_CROPS)
    start = time.perf_counter()
    report = generate_labels(cfg, progress=False, log=lambda *_: None)
    gen_s = time.perf_counter() - start
    options = {'train_dataloader.dataset.store_dir': store_dir}
    if ctx.quick:
        options.update({'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2,
                        'param_scheduler': [dict(type='CosineAnnealingLR', T_max=2, by_epoch=True, eta_min=0.0)]})
    results = [train_config(TRAIN_CONFIG, ctx.work_dir('fkd', seed), options, seed) for seed in ctx.seeds]
    train_s = sum(r.wall_s for r in results) / len(results)
    bytes_per_crop = report.manifest['bytes_per_crop'] if report.manifest else float('nan')
    note = (f'teacher-free; labels once: {gen_s:.0f}s for {report.crops} crops ({bytes_per_crop:.0f} B/crop), '
            f'train {train_s:.0f}s/seed, m=2 crops/image')
    return [DemoRow('FKD', [r.accuracy for r in results], gen_s + sum(r.wall_s for r in results), note,
                    list(ctx.seeds))]
