"""Linear warm-up of the VRM relation terms ([R], METHODS.md 5.8: the mdistiller/CRD protocol of the CIFAR recipe
ramps logit-distillation terms in over the first epochs, e.g. DKD and LSKD over 20 of 240 epochs).

Why VRM needs it: every edge is a unit vector, so the loss is scale-invariant in the logits and its gradient grows
as 1/||logits|| (ZSNorm adds 1/std). A freshly initialised student has tiny logits (std ~0.04 on the digits demo),
and there the ISV gradient is ~200x the CE gradient (314 vs 1.6 in norm): with lr 0.05 the first steps wreck the
student and CE never recovers. Ramping alpha and beta in lets CE give the logits a scale first.
"""
from __future__ import annotations

from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..registry import HOOKS
from .losses import VRMLoss


@HOOKS.register_module()
class VRMLossWarmupHook(Hook):
    """Scale every :class:`VRMLoss` of the model by ``min(1, (iter + 1) / (warmup_epochs * iters_per_epoch))``.

    Args:
        warmup_epochs: length of the linear ramp in epochs (may be fractional); 0 disables it.
    """

    priority = 'NORMAL'

    def __init__(self, warmup_epochs: float = 20.0) -> None:
        if warmup_epochs < 0:
            raise ValueError(f'VRMLossWarmupHook: warmup_epochs={warmup_epochs} must be >= 0')
        self.warmup_epochs = warmup_epochs

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        losses = [m for m in model.modules() if isinstance(m, VRMLoss)]
        if not losses:
            raise RuntimeError('VRMLossWarmupHook: the model has no VRMLoss; remove the hook or add the loss to the '
                               'distiller')
        total = self.warmup_epochs * len(runner.train_dataloader)
        factor = 1.0 if total <= 0 else min(1.0, (runner.iter + 1) / total)
        for loss in losses:
            loss.warmup_factor = factor
