"""Plumbing of the main job (``tools/demo.py``): train a config in-process and read its accuracy.

Each method room may add rows to the demo table with a ``demo.py`` module that defines
``run_demo(ctx: DemoContext) -> List[DemoRow]``; :data:`ROOMS` lists them in table order.
"""
from __future__ import annotations

import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.runner import Runner

from .compat.package_configs import config_root

ROOMS = ('fkd', 'vrm', 'kd_zero', 'amd', 'acmkd')
CONFIG_ROOT = config_root()  # the checkout's configs/, or mmkd_ext/.mim/configs of an installed package


@dataclass
class TrainResult:
    """Outcome of one training run."""
    accuracy: float  # top-1 % of the trained (student) model on the validation set
    wall_s: float
    work_dir: str
    metrics: Dict[str, float] = field(default_factory=dict)


@dataclass
class DemoRow:
    """One row of the demo table; ``accuracies[i]`` is the top-1 of the run with seed ``seeds[i]``."""
    name: str
    accuracies: List[float]
    wall_s: float
    note: str = ''
    seeds: Optional[List[int]] = None
    cpu_s: Optional[float] = None  # CPU time of this process for the row (set by tools/demo.py; load-independent)

    def __post_init__(self) -> None:
        if self.seeds is not None and len(self.seeds) != len(self.accuracies):
            raise ValueError(f'demo row {self.name!r}: {len(self.accuracies)} accuracies for seeds {self.seeds}')

    @property
    def by_seed(self) -> Dict[int, float]:
        """``{seed: top-1 %}``, what the paired comparison to the student needs."""
        if self.seeds is None:
            raise ValueError(f'demo row {self.name!r} does not say which seeds its accuracies come from')
        return dict(zip(self.seeds, self.accuracies))

    @property
    def mean(self) -> float:
        return sum(self.accuracies) / len(self.accuracies)

    @property
    def std(self) -> float:
        m = self.mean
        return (sum((a - m) ** 2 for a in self.accuracies) / max(1, len(self.accuracies) - 1)) ** 0.5


def top1(metrics: Dict[str, float]) -> float:
    """The student's top-1 accuracy from a validation metrics dict (plain or distillation loop)."""
    for key in ('accuracy/top1', 'student.accuracy/top1'):
        if key in metrics:
            return float(metrics[key])
    candidates = [k for k in metrics if k.endswith('accuracy/top1') and not k.startswith('teacher')]
    if not candidates:
        raise KeyError(f'no top-1 accuracy among validation metrics {sorted(metrics)}')
    return float(metrics[candidates[0]])


def train_config(config: str, work_dir: str, cfg_options: Optional[dict] = None, seed: int = 0,
                 log_level: str = 'WARNING') -> TrainResult:
    """Train ``config`` with an MMEngine Runner in this process and validate the final model.

    Args:
        config: config path (absolute, or relative to ``configs/``).
        work_dir: where logs and checkpoints go.
        cfg_options: overrides merged into the config (``--cfg-options`` semantics).
        seed: ``randomness.seed``.
        log_level: Runner log level (the demo keeps it quiet).

    Returns:
        The final validation accuracy and the wall time (build + train + validate).
    """
    path = config if osp.isabs(config) or osp.exists(config) else osp.join(CONFIG_ROOT, config)
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(dict(cfg_options or {}))
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = log_level
    cfg.experiment_name = f'{osp.basename(work_dir)}_{time.time_ns()}'
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    if metrics is None:  # MMRazor's SingleTeacherDistillValLoop returns nothing; RuntimeInfoHook kept them
        metrics = {key[len('val/'):]: buffer.current() for key, buffer in runner.message_hub.log_scalars.items()
                   if key.startswith('val/')}
    wall = time.perf_counter() - start
    return TrainResult(top1(metrics), wall, work_dir, {k: float(v) for k, v in metrics.items()})


@dataclass
class DemoContext:
    """What the method rows of the demo get: the trained teacher, seeds, and where to write."""
    work_root: str
    teacher_ckpt: str
    teacher_accuracy: float
    seeds: Sequence[int]
    quick: bool = False  # fewer epochs/iterations, for tests

    def work_dir(self, name: str, seed: int) -> str:
        return osp.join(self.work_root, f'{name}_seed{seed}')
