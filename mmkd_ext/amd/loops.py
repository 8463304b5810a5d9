"""``AMDCandidatesValLoop``: validate every candidate sub-network of the joint network (METHODS.md §1.6)."""
from __future__ import annotations

from typing import Dict, List, Optional

from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop

from ..registry import LOOPS
from .distributed import broadcast_buffers


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

    Args:
        runner, dataloader, evaluator, fp16: as in :class:`mmengine.runner.ValLoop`.
        scales: candidates to evaluate (default: the model's training scales).
    """

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False, scales: Optional[List[float]] = None):
        super().__init__(runner, dataloader, evaluator, fp16)
        self.scales = scales

    def _model(self):
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def run(self) -> Dict[str, float]:
        model = self._model()
        scales = self.scales or model.scales or [None]
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
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
