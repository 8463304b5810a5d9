"""The ACMKD rows of the demo table: the resnet8x0.5 student (the student of every other row), and the ensemble.

Same budget as the other rows: all 300 training images (the config's ``HeldOutSubset`` is unwrapped), 30 epochs,
300 optimizer steps (each step updates all three students). The weakest student (whose SSD partner changes) is
ranked by its running training accuracy (``rank_by='train'``); nothing is chosen on the validation split: the row
reports the resnet8x0.5 student whatever the other students reach (they are in the note, the ensemble in its row).
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List

from mmengine.config import Config

from ..demo_runner import CONFIG_ROOT, DemoContext, DemoRow, RowPlan, deep_merge, demo_epochs, final_only, train_config

CONFIG = osp.join(CONFIG_ROOT, 'acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')
STUDENTS = ('resnet8', 'rednet', 'vit')
REPORTED = 'resnet8'  # the config's CNN student: digits_student, i.e. resnet8x0.5 as in every other row
VIEWS = 'pad-3 random crop, a new one each epoch (3 students)'


def plans(ctx: DemoContext) -> List[RowPlan]:
    """The ACMKD row's plan: the demo teacher, every training image, ``demo_epochs`` epochs, ranked on training."""
    inner = Config.fromfile(CONFIG).train_dataloader.dataset.dataset.to_dict()
    options = deep_merge(final_only(demo_epochs(ctx.quick)), dict(
        model=dict(teacher_ckpt=ctx.teacher_ckpt),
        train_dataloader=dict(dataset=dict(_delete_=True, **inner)),
        custom_hooks=[dict(type='ACMKDHook', metric='accuracy/top1', rank_by='train', save_best=False)]))
    if ctx.quick:  # tests: 2 iterations per epoch, 100 validation images
        options['train_dataloader']['dataset']['indices'] = 64
        options['val_dataloader'] = dict(dataset=dict(indices=100))
    return [RowPlan('acmkd', 'ACMKD resnet8x0.5 student (T=1 + CE: the paper)', CONFIG, options, views=VIEWS,
                    chosen_on='weakest student: running train accuracy')]


def student_accuracies(metrics: Dict[str, float]) -> Dict[str, float]:
    """``{student: top-1}`` of a validation metrics dict of ``ACMKDValLoop``."""
    return {s: float(metrics[f'{s}.accuracy/top1']) for s in STUDENTS}


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Train ACMKD (resnet20 teacher; resnet8x0.5, RedNet and ViT students) once per seed.

    Args:
        ctx: the demo context (teacher checkpoint, seeds, work root, quick mode).

    Returns:
        ``DemoRow`` of the resnet8x0.5 student and of the ensemble; both come from the same runs, so the wall time
        is on the first row only.
    """
    plan = plans(ctx)[0]
    seeds = list(ctx.seeds)
    results = [train_config(CONFIG, ctx.work_dir(plan.key, seed), plan.options, seed) for seed in seeds]
    per_student = [student_accuracies(r.metrics) for r in results]
    means = {s: sum(a[s] for a in per_student) / len(per_student) for s in STUDENTS}
    wall = sum(r.wall_s for r in results)
    shown = ', '.join(f'{s} {a:.1f}' for s, a in means.items())
    note = f'3 students in one run ({wall / len(results):.0f}s/seed); mean top-1 per student: {shown}'
    budget = plan.budget()
    return [DemoRow(plan.name, [a[REPORTED] for a in per_student], wall, note, seeds, budget=budget),
            DemoRow('ACMKD ensemble (of the 3 students)', [r.metrics['ensemble.accuracy/top1'] for r in results], 0.0,
                    'softmax average of the 3 students (same runs as above)', seeds, budget=budget)]
