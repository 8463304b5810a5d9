"""Plumbing of the main job (``tools/demo.py``): train a config in-process and read its accuracy, and run the
rows of the table side by side, one worker process per CPU core.

Each method room may add rows to the demo table with a ``demo.py`` module that defines
``run_demo(ctx: DemoContext) -> List[DemoRow]``; :data:`ROOMS` lists them in table order.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os.path as osp
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

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


def train_seeds_row(name: str, config: str, ctx: DemoContext, cfg_options: Optional[dict] = None,
                    note: str = '') -> DemoRow:
    """Train ``config`` once per seed of ``ctx`` and return the row (its CPU seconds measured in this process).

    Args:
        name: the row's name; its first word names the work dirs (``<work_root>/<word>_seed<seed>``).
        config: config path (absolute, or relative to ``configs/``).
        ctx: seeds and work root.
        cfg_options: overrides merged into the config.
        note: the row's note column.

    Returns:
        The row, accuracies in the order of ``ctx.seeds``.
    """
    cpu = time.process_time()
    results = []
    for seed in ctx.seeds:
        results.append(train_config(config, ctx.work_dir(name.split(' ')[0], seed), cfg_options, seed=seed))
        print(f'[demo]   {name}, seed {seed}: top-1 {results[-1].accuracy:.2f} % in {results[-1].wall_s:.0f} s',
              flush=True)
    return DemoRow(name, [r.accuracy for r in results], sum(r.wall_s for r in results), note, list(ctx.seeds),
                   time.process_time() - cpu)


def train_teacher_row(name: str, config: str, work_dir: str, cfg_options: Optional[dict] = None) -> DemoRow:
    """Train the teacher (seed 0) and return its reference row; the checkpoint is under ``work_dir``."""
    cpu = time.process_time()
    teacher = train_config(config, work_dir, cfg_options, seed=0)
    print(f'[demo]   teacher top-1 {teacher.accuracy:.2f} % in {teacher.wall_s:.0f} s', flush=True)
    return DemoRow(name, [teacher.accuracy], teacher.wall_s, 'seed 0; the teacher of every row (reference line)', [0],
                   time.process_time() - cpu)


def room_rows(room: str, ctx: DemoContext) -> List[DemoRow]:
    """The rows of method ``room`` (``mmkd_ext/<room>/demo.py``), or ``[]`` when the room has no demo row."""
    try:
        module = importlib.import_module(f'mmkd_ext.{room}.demo')
    except ModuleNotFoundError as err:
        if err.name != f'mmkd_ext.{room}.demo':
            raise
        print(f'[demo] {room}: no demo row yet', flush=True)
        return []
    print(f'[demo] {room} started', flush=True)
    cpu = time.process_time()
    rows = module.run_demo(ctx)
    rows[0].cpu_s = time.process_time() - cpu  # a room's later rows come from the same runs
    print(f'[demo] {room} done: ' + ', '.join(f'{r.name} {r.mean:.2f}' for r in rows), flush=True)
    return rows


class InlineExecutor(Executor):
    """``--jobs 1``: run each submitted call at once in this process (same interface as the worker pool)."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to whoever asks for the result, as a pool would
            future.set_exception(exc)
        return future


def _init_worker(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def row_executor(jobs: int, threads: int) -> Executor:
    """Where the demo's rows run: ``jobs`` spawned worker processes with ``threads`` torch threads each (the rows
    are independent once the teacher is trained; on a 2-core CPU two single-threaded workers halve the wall time),
    or this process for ``jobs=1``."""
    if jobs <= 1:
        _init_worker(threads)
        return InlineExecutor()
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context('spawn'),
                               initializer=_init_worker, initargs=(threads, ))
