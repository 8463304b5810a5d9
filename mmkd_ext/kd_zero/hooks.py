"""Loss-rejection protocol of the KD-Zero search ([P] "filter out candidates with excessive loss values
or collapsed optimization"; [R] thresholds of METHODS.md 2.5), as an MMEngine hook of the proxy run."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

from mmengine.hooks import Hook

from ..registry import HOOKS


class CandidateRejected(RuntimeError):
    """Raised inside a proxy run to stop a candidate distiller early; ``iters`` = iterations spent."""

    def __init__(self, reason: str, iters: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.iters = iters


def _float_losses(outputs: Optional[dict]) -> Dict[str, float]:
    return {k: float(v.detach()) if hasattr(v, 'detach') else float(v) for k, v in (outputs or {}).items()
            if 'loss' in k}


def check_losses(losses: Dict[str, float], kd_prefix: str = 'distill.', ce_prefix: str = 'student.',
                 max_kd: float = 1e3, max_kd_ratio: float = 100.0, first: bool = False) -> Optional[str]:
    """The per-iteration rejection rules; returns the reason or None.

    Args:
        losses: loss name -> value of one training iteration (MMRazor keys, e.g. ``distill.loss_kdzero``).
        kd_prefix: prefix of the distillation losses.
        ce_prefix: prefix of the student's own (CE) losses.
        max_kd: reject when L_KD exceeds this at the first iteration ([R] 1e3).
        max_kd_ratio: reject when L_KD > ratio * L_CE at the first iteration ([R] 100).
        first: whether this is the first iteration (the exploding checks run only then).
    """
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if bad:
        return f'non-finite loss {bad}'
    if not first:
        return None
    kd = sum(v for k, v in losses.items() if k.startswith(kd_prefix))
    ce = sum(v for k, v in losses.items() if k.startswith(ce_prefix))
    if abs(kd) > max_kd:
        return f'exploding distillation loss {kd:.3g} > {max_kd:g} at the first iteration'
    if ce > 0 and abs(kd) > max_kd_ratio * ce:
        return f'distillation loss {kd:.3g} > {max_kd_ratio:g} x CE {ce:.3g} at the first iteration'
    return None


def check_progress(history: List[float], min_drop: float = 0.05, window: int = 3) -> Optional[str]:
    """Collapse rule: the mean of the last ``window`` total losses must be below ``(1 - min_drop)`` x the first.

    Args:
        history: total training loss per iteration so far.
        min_drop: required relative drop ([R] 5%).
        window: number of final iterations averaged (noise of small batches).
    """
    if len(history) < 2:
        return None
    recent = history[-window:]
    start, now = history[0], sum(recent) / len(recent)
    if now > (1 - min_drop) * start if start > 0 else now > start:
        return (f'collapsed optimisation: loss {now:.4g} did not drop below {1 - min_drop:.0%} of its initial '
                f'{start:.4g}')
    return None


@HOOKS.register_module()
class KDZeroRejectionHook(Hook):
    """Stop a proxy run as soon as its candidate distiller is hopeless (raises :class:`CandidateRejected`).

    Args:
        max_kd: first-iteration bound on the distillation loss.
        max_kd_ratio: first-iteration bound on L_KD / L_CE.
        check_iter: iteration (1-based) at which the collapse rule runs; default: one epoch.
        min_drop: relative loss drop required by ``check_iter``.
        kd_prefix / ce_prefix: loss-name prefixes (MMRazor's ``SingleTeacherDistill`` naming).
    """
    priority = 'VERY_HIGH'

    def __init__(self, max_kd: float = 1e3, max_kd_ratio: float = 100.0, check_iter: Optional[int] = None,
                 min_drop: float = 0.05, kd_prefix: str = 'distill.', ce_prefix: str = 'student.') -> None:
        self.max_kd, self.max_kd_ratio = max_kd, max_kd_ratio
        self.check_iter, self.min_drop = check_iter, min_drop
        self.kd_prefix, self.ce_prefix = kd_prefix, ce_prefix
        self.history: List[float] = []

    def before_train(self, runner) -> None:
        self.history = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        losses = _float_losses(outputs)
        done = runner.iter + 1
        reason = check_losses(losses, self.kd_prefix, self.ce_prefix, self.max_kd, self.max_kd_ratio,
                              first=not self.history)
        self.history.append(losses.get('loss', sum(losses.values())))
        check_iter = min(self.check_iter or len(runner.train_dataloader), runner.max_iters)  # short proxies too
        if reason is None and done == check_iter:
            reason = check_progress(self.history, self.min_drop)
        if reason is not None:
            raise CandidateRejected(reason, done)
