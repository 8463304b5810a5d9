"""``AMDCandidatesValLoop``: validate every candidate sub-network of the joint network (METHODS.md §1.6)."""
from __future__ import annotations

import itertools
from typing import Dict, Iterable, List, Optional

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop

from ..registry import LOOPS
from .bn_stats import batch_norms
from .distributed import broadcast_buffers

# [R] training batches per candidate for the BN recalibration when candidates are sampled (issue 26)
RECALIBRATION_BATCHES = 8


def scale_key(scale: float) -> str:
    """Metric prefix of a candidate, e.g. ``'scale_0.3000'``."""
    return f'scale_{scale:.4f}'


@LOOPS.register_module()
class AMDCandidatesValLoop(ValLoop):
    """Run the evaluator once per candidate scale of an :class:`AMDDistill` model.

    Under DDP every rank first takes rank 0's BatchNorm statistics (live and per-candidate bank,
    :func:`~mmkd_ext.amd.distributed.broadcast_buffers`), so all shards are validated with the same statistics.

    Metrics are reported as ``scale_<s>/<metric>`` for every candidate, plus the plain metric names of the
    smallest candidate (the student), so ``save_best='auto'`` tracks the student.

    Before validating, the BN statistics of every candidate can be recalibrated ([R] issue 26,
    :func:`recalibrate_bn`) on the first batches of the runner's *training* dataloader (never the validation
    or held-out selection data): with ``candidates_per_step`` sampling, a rarely trained candidate's
    running statistics are stale and would bias the selection toward the always-trained ends.

    Args:
        runner, dataloader, evaluator, fp16: as in :class:`mmengine.runner.ValLoop`.
        scales: candidates to evaluate (default: the model's training scales).
        bn_recalibration_batches: training batches per candidate; None: :data:`RECALIBRATION_BATCHES` when the
            model samples candidates (``candidates_per_step.mode != 'all'``), else 0 (off).
    """

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False, scales: Optional[List[float]] = None,
                 bn_recalibration_batches: Optional[int] = None):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.scales = scales
        self.bn_recalibration_batches = bn_recalibration_batches

    def _model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def run(self) -> Dict[str, float]:
        model = self._model()
        scales = self.scales or model.scales or [None]
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        self._recalibrate(model, scales)
        broadcast_buffers(model)  # the candidates' BN statistics diverge per rank under no_sync (issue 23)
        metrics: Dict[str, float] = {}
        last: Dict[str, float] = {}
        for scale in scales:
            model.set_scale(scale)
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
            last = self.evaluator.evaluate(len(self.dataloader.dataset))
            if scale is not None:
                metrics.update({f'{scale_key(scale)}/{k}': v for k, v in last.items()})
        model.set_scale(None)
        metrics.update(last)
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics


    def _recalibration_batches(self, model) -> int:
        if self.bn_recalibration_batches is not None:
            return int(self.bn_recalibration_batches)
        sampled = getattr(model, 'candidates_per_step', {}).get('mode', 'all') != 'all'
        return RECALIBRATION_BATCHES if sampled else 0

    def _recalibrate(self, model, scales: List[Optional[float]]) -> None:
        """Recalibrate every candidate's BN statistics on training batches (see the class docstring)."""
        n = self._recalibration_batches(model)
        if n <= 0 or getattr(model, 'bn_bank', None) is None:
            return
        loader = getattr(self.runner, 'train_dataloader', None)
        if isinstance(loader, dict):  # a runner that validates without training (runner.val()) has not built it
            loader = self.runner.build_dataloader(loader)
        if loader is None:
            print_log('AMDCandidatesValLoop: no train_dataloader to recalibrate the BN statistics on; validating '
                      'with the training-time statistics (set bn_recalibration_batches=0 to silence)',
                      logger='current')
            return
        for scale in scales:
            recalibrate_bn(model, scale, itertools.islice(loader, n))
        model.set_scale(None)  # store the last candidate's statistics in the bank
        model.eval()


@torch.no_grad()
def recalibrate_bn(model, scale: Optional[float], batches: Iterable) -> int:
    """Recompute candidate ``scale``'s BN running statistics from ``batches`` (train mode, no gradients).

    The statistics are reset and re-estimated as the plain average over the batches (``momentum=None``),
    the slimmable-network recalibration (Yu et al. 2019); affine parameters are untouched.

    Args:
        model: an :class:`~mmkd_ext.amd.algorithm.AMDDistill` (unwrapped).
        scale: the candidate; its statistics go to its private bank entry at the next ``set_scale``.
        batches: training batches as the dataloader yields them.

    Returns:
        The number of batches used.
    """
    model.set_scale(scale)
    bns = [bn for _, bn in batch_norms(model.architecture)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    model.architecture.train()
    count = 0
    try:
        for batch in batches:
            data = model.data_preprocessor(batch, True)
            model.architecture(data['inputs'], data['data_samples'], mode='tensor')
            count += 1
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
        model.architecture.eval()
    return count


def candidate_accuracies(metrics: Dict[str, float], scales: List[float], metric: str = 'accuracy/top1'
                         ) -> List[float]:
    """Per-candidate values of ``metric`` from :class:`AMDCandidatesValLoop` output, in ``scales`` order."""
    out = []
    for s in scales:
        key = f'{scale_key(s)}/{metric}'
        if key not in metrics:
            raise KeyError(f'no {key!r} among validation metrics {sorted(metrics)[:8]}...; '
                           f'set selection.metric to one the evaluator reports')
        out.append(float(metrics[key]))
    return out
