"""VRM row of the digits demo table (``tools/demo.py``)."""
from __future__ import annotations

from typing import List

from ..demo_runner import DemoContext, DemoRow, train_config

CONFIG = 'vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py'
# A VRM step forwards 2B images through teacher and student: ~2x a KD step (benchmarks/vrm_step_time.py). The demo
# trains the config's 30 epochs (relation terms ramped in over the first 5) for every seed of the demo (the paired
# comparison to the student needs the same seeds), about 45 s per seed with one thread on the 2-core machine;
# ctx.quick: 2 epochs.
EPOCHS, WARMUP_EPOCHS = 30, 5
QUICK_EPOCHS, QUICK_WARMUP_EPOCHS = 2, 1


def run_demo(ctx: DemoContext) -> List[DemoRow]:
    """Train the VRM student (resnet20 -> resnet8) once per seed of the demo and return one table row."""
    epochs, warmup = (QUICK_EPOCHS, QUICK_WARMUP_EPOCHS) if ctx.quick else (EPOCHS, WARMUP_EPOCHS)
    options = dict(
        model=dict(teacher_ckpt=ctx.teacher_ckpt),
        train_cfg=dict(max_epochs=epochs, val_interval=epochs),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, eta_min=0.0)],
        custom_hooks=[dict(type='VRMLossWarmupHook', warmup_epochs=warmup)])
    seeds = list(ctx.seeds)
    results = [train_config(CONFIG, ctx.work_dir('vrm', seed), options, seed=seed) for seed in seeds]
    note = f'ISV+ICV, RandAugment virtual view; {epochs} epochs'
    return [DemoRow('VRM (alpha=12.8 for C=10, beta=32, m=90)', [r.accuracy for r in results],
                    sum(r.wall_s for r in results), note, seeds)]
