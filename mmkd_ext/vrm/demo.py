"""VRM row of the digits demo table (``tools/demo.py``)."""
from __future__ import annotations

from typing import List

from ..demo_runner import STUDENT_VAL, DemoContext, DemoRow, RowPlan, deep_merge, demo_epochs, final_only, train_plan

CONFIG = 'vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py'
# A VRM step forwards 2B images through teacher and student: ~2x a KD step (benchmarks/vrm_step_time.py). The demo
# trains the 30 epochs of every row (relation terms ramped in over the first 5) for every seed of the demo (the
# paired comparison to the student needs the same seeds); ctx.quick: 2 epochs, 1 of warm-up.
WARMUP_EPOCHS, QUICK_WARMUP_EPOCHS = 5, 1


def plans(ctx: DemoContext) -> List[RowPlan]:
    """The VRM row's plan: the 300 steps of every row, each on a real and a virtual (RandAugment) view."""
    warmup = QUICK_WARMUP_EPOCHS if ctx.quick else WARMUP_EPOCHS
    options = deep_merge(final_only(demo_epochs(ctx.quick)), dict(
        model=dict(teacher_ckpt=ctx.teacher_ckpt), **STUDENT_VAL,
        custom_hooks=[dict(type='VRMLossWarmupHook', warmup_epochs=warmup)]))
    return [RowPlan('vrm', 'VRM (alpha=12.8 for C=10, beta=32, m=90)', CONFIG, options,
                    views='pad-3 random crop + its RandAugment view, new each epoch',
                    teacher='2 per step: real + virtual view (live)')]


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Train the VRM student (resnet20 -> resnet8x0.5) once per seed of the demo and return one table row."""
    return [train_plan(plans(ctx)[0], ctx, 'ISV+ICV, RandAugment virtual view')]
