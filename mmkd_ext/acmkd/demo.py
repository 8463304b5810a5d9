"""The ACMKD rows of the demo table: the best of the three students, and their ensemble."""
from __future__ import annotations

import os.path as osp
from collections import Counter
from typing import Dict, List

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, train_config

CONFIG = osp.join(CONFIG_ROOT, 'acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')
STUDENTS = ('resnet8', 'rednet', 'vit')
# 20 epochs (the other rows: 30): three students per run cost about 2.2 s per epoch (1 thread, 2-core CPU), and the
# row runs every seed of the demo (the paired comparison to the student needs the same seeds) within its 15 minutes
DEMO_EPOCHS = 20
QUICK_EPOCHS = 2


def demo_options(teacher_ckpt: str, epochs: int) -> Dict:
    """``--cfg-options`` for the demo: the demo teacher, ``epochs`` epochs, one validation at the end.

    Students are re-ranked by their running training accuracy each epoch (``rank_by='train'``), so
    the demo needs no per-epoch validation; SSD starts after 10% of the epochs (at least one).
    """
    return {
        'model.teacher_ckpt': teacher_ckpt,
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'param_scheduler': [dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, eta_min=0.0)],
        'custom_hooks': [dict(type='ACMKDHook', metric='accuracy/top1', rank_by='train')],
    }


def best_student(metrics: Dict[str, float]) -> str:
    """The student with the highest top-1 in a validation metrics dict of ``ACMKDValLoop``."""
    return max(STUDENTS, key=lambda s: metrics[f'{s}.accuracy/top1'])


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Train ACMKD (resnet20 teacher; resnet8, RedNet and ViT students) once per seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        ``DemoRow('ACMKD best student', ...)`` and ``DemoRow('ACMKD ensemble', ...)``; both come from
        the same runs, so the wall time is on the first row only.
    """
    epochs = QUICK_EPOCHS if ctx.quick else DEMO_EPOCHS
    options = demo_options(ctx.teacher_ckpt, epochs)
    if ctx.quick:  # tests: 2 iterations per epoch, 100 validation images
        options.update({'train_dataloader.dataset.dataset.indices': 64, 'val_dataloader.dataset.indices': 100})
    seeds = list(ctx.seeds)
    results = [train_config(CONFIG, ctx.work_dir('acmkd', seed), options, seed) for seed in seeds]
    metrics = [r.metrics for r in results]
    winners = [best_student(m) for m in metrics]
    best = [m[f'{w}.accuracy/top1'] for m, w in zip(metrics, winners)]
    ensemble = [m['ensemble.accuracy/top1'] for m in metrics]
    means = {s: sum(m[f'{s}.accuracy/top1'] for m in metrics) / len(metrics) for s in STUDENTS}
    wall = sum(r.wall_s for r in results)
    shown = ', '.join(f'{s} {a:.1f}' for s, a in means.items())
    common = Counter(winners).most_common(1)[0][0]
    note = f'{epochs} epochs, 3 students in one run ({wall / len(results):.0f}s/seed); per student: {shown}'
    return [DemoRow('ACMKD best student', best, wall, f'best is mostly {common}; {note}', seeds),
            DemoRow('ACMKD ensemble', ensemble, 0.0, 'softmax average of the 3 students (same runs as above)', seeds)]
