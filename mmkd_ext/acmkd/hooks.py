"""``ACMKDHook``: epoch bookkeeping, weakest-student re-ranking and per-student best checkpoints.

- before every training epoch it tells the algorithm the epoch (teacher-attention pre-training,
  SSD start ``n``);
- after every training epoch (``rank_by='held_out'``, the default: accuracy on the training images held
  out of training, :mod:`mmkd_ext.held_out`; ``rank_by='train'``: running training accuracy) or every
  validation (``rank_by='val'``) it re-ranks the students and sets the weakest (paper Sec. III-C,
  "dynamically"; [R] METHODS.md 3.5);
- after every validation it writes ``best_<student>.pth`` (a standalone mmpretrain checkpoint of
  that student) whenever the student reaches its best accuracy so far;
- it keeps the weakest student and the best accuracies in checkpoints, so ``--resume`` continues;
- after every training epoch (before the checkpoint and the validation) it averages the BatchNorm running
  statistics over the processes: the configs train with ``broadcast_buffers=False`` (one DDP per student),
  so each rank's statistics drift apart; [R] the mean over ranks is what every rank validates with and what
  the checkpoint holds (see :func:`average_bn_statistics`).
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..held_out import held_out_eval_dataloader
from ..registry import HOOKS
from .export import plain_cfg, save_student
from .ranking import held_out_accuracies, select_weakest


def _algorithm(runner):
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not hasattr(model, 'student_names'):
        raise TypeError(f'ACMKDHook works with ACMKDDistill, not {type(model).__name__}')
    return model


def average_bn_statistics(model: nn.Module) -> int:
    """Replace every BatchNorm's running mean and variance by their mean over the processes (in place).

    [R] ours (issue 13): the mean of the ranks' running statistics, one all-reduce for all layers. Every rank
    trained on its own shard with the same weights, so the mean estimates the statistics of the whole data
    as SyncBN's would (up to the variance of the per-rank means). ``num_batches_tracked`` is equal on all ranks.

    Args:
        model: the algorithm (its frozen teacher's statistics are equal on all ranks and stay unchanged).

    Returns:
        The number of BatchNorm layers averaged (0 in a single process: nothing to do).
    """
    if get_world_size() == 1:
        return 0
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    stats = [t for m in layers for t in (m.running_mean, m.running_var)]
    if not stats:
        return 0
    flat = torch.cat([t.detach().reshape(-1).double() for t in stats])
    all_reduce(flat, op='mean')
    offset = 0
    with torch.no_grad():
        for t in stats:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()
    return len(layers)


@HOOKS.register_module()
class ACMKDHook(Hook):
    """Schedule state, weakest-student ranking and best-student export for :class:`ACMKDDistill`.

    Args:
        metric: validation metric ranking the students (prefixed by student name in the metrics).
        rank_by: ``'held_out'`` ([R] default: accuracy after each training epoch on the images that the
            training set, a ``HeldOutSubset(part='train')``, leaves out), ``'val'`` (latest validation
            accuracy) or ``'train'`` (running training accuracy of the epoch, all-reduced across processes).
        save_best: write ``best_<student>.pth`` standalone checkpoints.
        out_dir: where they go (default: the work dir).
    """

    priority = 'NORMAL'

    def __init__(self, metric: str = 'accuracy/top1', rank_by: str = 'held_out', save_best: bool = True,
                 out_dir: Optional[str] = None) -> None:
        if rank_by not in ('held_out', 'val', 'train'):
            raise ValueError(f"rank_by={rank_by!r}; use 'held_out', 'val' or 'train'")
        self.metric, self.rank_by, self.save_best, self.out_dir = metric, rank_by, save_best, out_dir
        self.best: Dict[str, float] = {}

    def before_train(self, runner) -> None:
        model = _algorithm(runner)
        model.set_total_epochs(runner.max_epochs)
        print_log(f'ACMKD: students {model.student_names}; second-stage distillation from epoch '
                  f'{model.ssd_start_epoch} (0-based), students ranked by {self.rank_by} {self.metric}',
                  logger='current')
        if self.rank_by == 'held_out':
            self._build_held_out(runner, model)

    def _build_held_out(self, runner, model) -> None:
        """The held-out dataloader and one evaluator per student (``rank_by='held_out'``)."""
        cfg = runner.cfg
        try:
            loader_cfg = held_out_eval_dataloader(dict(cfg.train_dataloader.dataset), cfg.val_dataloader)
        except ValueError as err:
            raise ValueError(f"ACMKDHook(rank_by='held_out'): {err}; or rank by rank_by='val' / 'train'") from err
        self.held_out_loader = runner.build_dataloader(loader_cfg, seed=runner.seed)
        meta = self.held_out_loader.dataset.metainfo
        self.held_out_evaluators = {}
        for name in model.student_names:
            self.held_out_evaluators[name] = runner.build_evaluator(copy.deepcopy(cfg.val_evaluator))
            self.held_out_evaluators[name].dataset_meta = meta

    def before_train_epoch(self, runner) -> None:
        _algorithm(runner).set_epoch(runner.epoch)

    def after_train_epoch(self, runner) -> None:
        model = _algorithm(runner)
        average_bn_statistics(model)  # priority NORMAL: before CheckpointHook (VERY_LOW) and the validation
        accs = model.train_accuracies(reset=True)
        if self.rank_by == 'train':
            self._rerank(runner, model, self._reduce(accs, model))
        elif self.rank_by == 'held_out':
            self._rerank(runner, model, held_out_accuracies(model, self.held_out_loader, self.held_out_evaluators,
                                                            self.metric))

    @staticmethod
    def _reduce(accs: Dict[str, Optional[float]], model) -> Dict[str, Optional[float]]:
        names = [n for n in model.student_names]
        values = torch.tensor([accs[n] if accs[n] is not None else float('nan') for n in names], dtype=torch.float64)
        all_reduce(values, op='mean')
        return {n: (None if torch.isnan(v) else float(v)) for n, v in zip(names, values)}

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if not metrics:
            return
        model = _algorithm(runner)
        accs = {n: metrics.get(f'{n}.{self.metric}') for n in model.student_names}
        if self.rank_by == 'val':
            self._rerank(runner, model, accs)
        if self.save_best:
            self._save_best(runner, model, accs)

    def _rerank(self, runner, model, accs: Dict[str, Optional[float]]) -> None:
        previous = model.weakest
        model.weakest = select_weakest(accs, model.student_names, previous)
        shown = {n: (round(a, 2) if a is not None else None) for n, a in accs.items()}
        print_log(f'ACMKD: {self.rank_by} {self.metric} {shown} -> weakest student {model.weakest!r}'
                  f'{"" if model.weakest == previous else f" (was {previous!r})"}', logger='current')
        runner.message_hub.update_info('acmkd_weakest', model.weakest)

    def _save_best(self, runner, model, accs: Dict[str, Optional[float]]) -> None:
        out_dir = self.out_dir or runner.work_dir
        for name, acc in accs.items():
            if acc is None or acc <= self.best.get(name, float('-inf')):
                continue
            self.best[name] = float(acc)
            if is_main_process():
                path = osp.join(out_dir, f'best_{name}.pth')
                epoch = runner.message_hub.get_info('epoch')
                save_student(model, name, path, meta={'epoch': epoch, self.metric: float(acc)})
                print_log(f'ACMKD: new best {name} {self.metric}={acc:.2f}, saved {path}', logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = _algorithm(runner)
        checkpoint.setdefault('meta', {})['acmkd'] = dict(
            weakest=model.weakest, best=dict(self.best),
            student_cfgs={n: plain_cfg(c) for n, c in model.student_cfgs.items()})

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get('acmkd')
        if state:
            _algorithm(runner).weakest = state.get('weakest')
            self.best = dict(state.get('best', {}))
