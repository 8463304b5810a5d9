"""One validation/test pass that evaluates the teacher, every student and their ensemble.

Metrics are prefixed by network: ``teacher.accuracy/top1``, ``<student>.accuracy/top1``,
``ensemble.accuracy/top1``; plus ``mean.<metric>`` (mean over the students) and
``<network>.gap/<metric>`` (network minus teacher), the "Gap" columns of the paper's Tables I-II.
The frozen teacher is evaluated once and its metrics are reused afterwards.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop, autocast

from ..registry import LOOPS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


def prefixed_metrics(per_network: Dict[str, Dict[str, float]], students: Sequence[str],
                     gap_metrics: Sequence[str]) -> Dict[str, float]:
    """Flatten per-network metrics with prefixes and add the students' mean and the gaps to the teacher.

    Args:
        per_network: network name -> metrics (``'teacher'`` and ``'ensemble'`` included when evaluated).
        students: the student names.
        gap_metrics: metric names that get ``mean.`` and ``.gap/`` entries (e.g. ``'accuracy/top1'``).

    Returns:
        Flat metrics dict.
    """
    out = {f'{net}.{k}': v for net, metrics in per_network.items() for k, v in metrics.items()}
    for key in gap_metrics:
        values = [per_network[s][key] for s in students if key in per_network.get(s, {})]
        if len(values) == len(students):
            out[f'mean.{key}'] = float(sum(values) / len(values))
        teacher = per_network.get('teacher', {}).get(key)
        if teacher is None:
            continue
        for net in [*students, 'ensemble', 'mean']:
            value = out.get(f'{net}.{key}')
            if value is not None:
                out[f'{net}.gap/{key}'] = float(value) - float(teacher)
    return out


class _NetworkEvaluation:
    """Evaluators per network and the shared loop body of :class:`ACMKDValLoop` / :class:`ACMKDTestLoop`."""

    def _setup(self, evaluator: Union[dict, list], evaluate_teacher: str, gap_metrics: Sequence[str]) -> None:
        if not isinstance(evaluator, (dict, list)):
            raise TypeError('ACMKD loops build one evaluator per network and need the evaluator config '
                            f'(dict or list), got {type(evaluator).__name__}')
        if evaluate_teacher not in ('once', 'always', 'never'):
            raise ValueError(f"evaluate_teacher={evaluate_teacher!r}; use 'once', 'always' or 'never'")
        model = _unwrap(self.runner.model)
        self.students: List[str] = list(model.student_names)
        self.evaluate_teacher = evaluate_teacher
        self.gap_metrics = list(gap_metrics)
        self.evaluators: Dict[str, Evaluator] = {}
        for net in ['teacher', *self.students, 'ensemble']:
            self.evaluators[net] = self.runner.build_evaluator(copy.deepcopy(evaluator))
            if hasattr(self.dataloader.dataset, 'metainfo'):
                self.evaluators[net].dataset_meta = self.dataloader.dataset.metainfo
        self._teacher_metrics: Optional[Dict[str, float]] = None

    def _with_teacher(self) -> bool:
        return self.evaluate_teacher == 'always' or (self.evaluate_teacher == 'once' and self._teacher_metrics is None)

    def _run(self, stage: str) -> Dict[str, float]:
        self.runner.call_hook(f'before_{stage}')
        self.runner.call_hook(f'before_{stage}_epoch')
        self.runner.model.eval()
        with_teacher = self._with_teacher()
        for idx, data_batch in enumerate(self.dataloader):
            self._run_iter(stage, idx, data_batch, with_teacher)
        size = len(self.dataloader.dataset)
        per_network = {net: ev.evaluate(size) for net, ev in self.evaluators.items()
                       if net != 'teacher' or with_teacher}
        if with_teacher:
            self._teacher_metrics = per_network['teacher']
        elif self._teacher_metrics is not None:
            per_network['teacher'] = self._teacher_metrics
        metrics = prefixed_metrics(per_network, self.students, self.gap_metrics)
        self.runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
        self.runner.call_hook(f'after_{stage}')
        return metrics

    @torch.no_grad()
    def _run_iter(self, stage: str, idx: int, data_batch: dict, with_teacher: bool) -> None:
        self.runner.call_hook(f'before_{stage}_iter', batch_idx=idx, data_batch=data_batch)
        with autocast(enabled=self.fp16):
            outputs = _unwrap(self.runner.model).predict_all(data_batch, with_teacher=with_teacher)
        for net, samples in outputs.items():
            self.evaluators[net].process(data_samples=samples, data_batch=data_batch)
        self.runner.call_hook(f'after_{stage}_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs['ensemble'])


@LOOPS.register_module()
class ACMKDValLoop(_NetworkEvaluation, ValLoop):
    """Validation of teacher, students and ensemble in one pass (METHODS.md 3.7, 3.11).

    Args:
        runner: the Runner.
        dataloader: dataloader (or its config).
        evaluator: evaluator config; one copy is built per network.
        fp16: autocast during evaluation.
        evaluate_teacher: ``'once'`` (default; the teacher is frozen), ``'always'`` or ``'never'``.
        gap_metrics: metrics that get the students' mean and gaps to the teacher.
    """

    def __init__(self, runner, dataloader, evaluator: Union[dict, list], fp16: bool = False,
                 evaluate_teacher: str = 'once', gap_metrics: Sequence[str] = ('accuracy/top1', )) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self._setup(evaluator, evaluate_teacher, gap_metrics)

    def run(self) -> dict:
        return self._run('val')


@LOOPS.register_module()
class ACMKDTestLoop(_NetworkEvaluation, TestLoop):
    """Test-time counterpart of :class:`ACMKDValLoop` (same arguments)."""

    def __init__(self, runner, dataloader, evaluator: Union[dict, list], fp16: bool = False,
                 evaluate_teacher: str = 'once', gap_metrics: Sequence[str] = ('accuracy/top1', )) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self._setup(evaluator, evaluate_teacher, gap_metrics)

    def run(self) -> dict:
        return self._run('test')
