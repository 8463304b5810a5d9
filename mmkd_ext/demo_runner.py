"""Plumbing of the main job (``tools/demo.py``): train a config in-process and read its accuracy, and run the
rows of the table side by side, one worker process per CPU core.

Each method room may add rows to the demo table with a ``demo.py`` module that defines
``run_demo(ctx: DemoContext) -> List[DemoRow]`` and ``plans(ctx) -> List[RowPlan]`` (what each row trains: config,
overrides, views, teacher forwards, what it selects on); :data:`ROOMS` lists them in table order. The table states
each row's budget from its plan, and ``tests/test_demo_plans.py`` checks that rows differing only by the method train
the same optimizer steps on the same images.
"""
from __future__ import annotations

import copy
import glob
import importlib
import math
import multiprocessing
import os.path as osp
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.runner import Runner

from .compat.package_configs import config_root
from .held_out import HELD_OUT_EVERY, held_out_indices

ROOMS = ('fkd', 'vrm', 'kd_zero', 'amd', 'acmkd')
CONFIG_ROOT = config_root()  # the checkout's configs/, or mmkd_ext/.mim/configs of an installed package
EPOCHS = 30  # every row's schedule: 30 epochs of the 300 training images at batch 32 = 300 optimizer steps
QUICK_EPOCHS = 2
STUDENT = 'kd/resnet8x0.5_1xb32-30e_digits.py'
KD = 'kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'
LIVE_CROPS = 'pad-3 random crop, a new one each epoch'
NOTHING_CHOSEN = 'nothing (final model, validated once)'


def deep_merge(*options: dict) -> dict:
    """Merge nested override dicts left to right (a later leaf wins; dicts merge, lists and values replace)."""
    out: dict = {}
    for opts in options:
        for key, value in opts.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict) and not value.get('_delete_'):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def final_only(epochs: int) -> dict:
    """Overrides that leave nothing to choose on the validation split: ``epochs`` epochs with a cosine schedule,
    one validation after the last epoch (the reported number), one checkpoint (the last), no 'best' checkpoint."""
    return dict(train_cfg=dict(max_epochs=epochs, val_interval=epochs),
                param_scheduler=[dict(type='CosineAnnealingLR', T_max=epochs, by_epoch=True, eta_min=0.0)],
                default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=epochs, max_keep_ckpts=1,
                                                   save_best=None)))


# distillation rows: MMRazor's SingleTeacherDistillValLoop validates the teacher as well, a second forward of every
# validation image through the resnet20 for a number the teacher row already gives; the plain loop validates the
# student alone (the same top-1)
STUDENT_VAL = dict(val_cfg=dict(_delete_=True, type='ValLoop'))


def demo_epochs(quick: bool) -> int:
    """The epochs of every row: :data:`EPOCHS`, or :data:`QUICK_EPOCHS` in quick mode (tests)."""
    return QUICK_EPOCHS if quick else EPOCHS


@dataclass
class RowPlan:
    """What one demo row trains (per seed): the budget the table states and ``tests/test_demo_plans.py`` compares.

    Attributes:
        key: short name of the row's work dirs (``<work_root>/<key>_seed<seed>``).
        name: the row's name in the table.
        config: config path (absolute, or relative to ``configs/``).
        options: overrides merged into the config (nested dicts).
        views: the distinct training views each image gives (augmentation family).
        teacher: teacher forwards per training image (live or stored once).
        chosen_on: what any choice of the row (student, genome, TA, checkpoint) is made on.
        extra_steps: optimizer steps outside ``config`` (AMD's joint stage, KD-Zero's proxies), stated in the table.
    """
    key: str
    name: str
    config: str
    options: dict
    views: str = LIVE_CROPS
    teacher: str = '1 per view (live)'
    chosen_on: str = NOTHING_CHOSEN
    extra_steps: str = ''

    def cfg(self) -> Config:
        """The config as trained: file plus overrides."""
        path = self.config if osp.isabs(self.config) or osp.exists(self.config) else osp.join(CONFIG_ROOT, self.config)
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(copy.deepcopy(self.options))
        return cfg

    def budget(self) -> Dict[str, object]:
        """``steps`` (optimizer steps per seed of ``config``), ``images`` (distinct training images) and the stated
        columns, read from the merged config."""
        cfg = self.cfg()
        loader = cfg.train_dataloader
        images = train_images(loader.dataset)
        crops = int(loader.dataset.get('crops_per_image', 1)) if 'FKD' in str(cfg.train_cfg.get('type', '')) else 1
        steps = cfg.train_cfg.max_epochs // crops * math.ceil(images / loader.batch_size)
        return dict(steps=steps, images=images, views=self.views, teacher=self.teacher, chosen_on=self.chosen_on,
                    extra_steps=self.extra_steps)


def train_images(dataset: dict) -> int:
    """How many distinct images a training dataset config yields (through ``HeldOutSubset``/``FKDDataset``
    wrappers, ``indices``, else the image files under ``data_root/data_prefix``)."""
    if dataset.get('type') == 'HeldOutSubset':
        return len(held_out_indices(train_images(dataset['dataset']), dataset.get('every', HELD_OUT_EVERY))[0])
    if isinstance(dataset.get('dataset'), dict):
        return train_images(dataset['dataset'])
    indices = dataset.get('indices')
    if indices is not None:
        return indices if isinstance(indices, int) else len(indices)
    prefix = dataset.get('data_prefix', '')
    prefix = prefix.get('img_path', '') if isinstance(prefix, dict) else prefix
    files = glob.glob(osp.join(dataset.get('data_root', ''), prefix, '*', '*.png'))
    if not files:
        raise FileNotFoundError(f'demo plan: no training images under {osp.join(dataset.get("data_root", ""), prefix)}'
                                '; make the demo data first (python tools/misc/make_demo_data.py --tasks cls)')
    return len(files)


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
    budget: Optional[Dict[str, object]] = None  # RowPlan.budget(): steps, images, views, teacher, chosen_on

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


def validated_metrics(runner: Runner) -> Dict[str, float]:
    """The metrics of the runner's latest validation (``val/`` scalars of its message hub), ``{}`` if none."""
    return {key[len('val/'):]: buffer.current() for key, buffer in runner.message_hub.log_scalars.items()
            if key.startswith('val/')}


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
    cfg.merge_from_dict(copy.deepcopy(dict(cfg_options or {})))  # mmengine pops `_delete_` out of what it merges
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.log_level = log_level
    cfg.experiment_name = f'{osp.basename(work_dir)}_{time.time_ns()}'
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    # the training loop validates after its last epoch: that is the final model's result (validating again would
    # double the validation cost); a loop without validation is validated here
    metrics = validated_metrics(runner) or runner.val_loop.run()
    if metrics is None:  # MMRazor's SingleTeacherDistillValLoop returns nothing; RuntimeInfoHook kept them
        metrics = validated_metrics(runner)
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
                    note: str = '', key: Optional[str] = None) -> DemoRow:
    """Train ``config`` once per seed of ``ctx`` and return the row (its CPU seconds measured in this process).

    Args:
        name: the row's name; its first word names the work dirs (``<work_root>/<word>_seed<seed>``).
        config: config path (absolute, or relative to ``configs/``).
        ctx: seeds and work root.
        cfg_options: overrides merged into the config.
        note: the row's note column.
        key: the work dirs' name (default: the first word of ``name``).

    Returns:
        The row, accuracies in the order of ``ctx.seeds``.
    """
    cpu = time.process_time()
    results = []
    for seed in ctx.seeds:
        results.append(train_config(config, ctx.work_dir(key or name.split(' ')[0], seed), cfg_options, seed=seed))
        print(f'[demo]   {name}, seed {seed}: top-1 {results[-1].accuracy:.2f} % in {results[-1].wall_s:.0f} s',
              flush=True)
    return DemoRow(name, [r.accuracy for r in results], sum(r.wall_s for r in results), note, list(ctx.seeds),
                   time.process_time() - cpu)


def train_plan(plan: RowPlan, ctx: DemoContext, note: str = '', config: Optional[str] = None) -> DemoRow:
    """Train ``plan`` once per seed of ``ctx`` (:func:`train_seeds_row`); the row carries the plan's budget.

    Args:
        plan: the row's plan.
        ctx: seeds and work root.
        note: the row's note column.
        config: train this config instead of ``plan.config`` (KD-Zero's searched config, which inherits it).

    Returns:
        The row.
    """
    row = train_seeds_row(plan.name, config or plan.config, ctx, plan.options, note, plan.key)
    row.budget = plan.budget()
    return row


def core_plans(ctx: DemoContext) -> List[RowPlan]:
    """The rows every method is compared with: the student alone, vanilla KD as configured (tau=4, weight 3, plus
    the student's CE) and vanilla KD in the papers' setting of FKD (T=1, soft labels only, no CE)."""
    final = final_only(demo_epochs(ctx.quick))
    teacher = dict(model=dict(teacher_ckpt=ctx.teacher_ckpt), **STUDENT_VAL)
    paper = dict(model=dict(architecture=dict(head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=0.0))),
                            distiller=dict(distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1,
                                                                            loss_weight=1.0)))))
    return [RowPlan('student', 'student resnet8x0.5 (0.02 M params)', STUDENT, final, teacher='0'),
            RowPlan('kd', 'vanilla KD (KL, tau=4, weight 3, + CE)', KD, deep_merge(final, teacher)),
            RowPlan('kd_t1', 'vanilla KD (KL, T=1, no CE: the FKD paper loss)', KD, deep_merge(final, teacher, paper))]


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
