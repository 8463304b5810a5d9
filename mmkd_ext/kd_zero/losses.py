"""KD-Zero's generalised distiller as an MMRazor loss (Eq. 1, single- and multi-teacher Eq. 3)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_same_shape
from ..losses.precision import fp32_loss
from ..registry import MODELS
from . import operations as ops
from .genome import Genome, SearchSpace, validate

TensorOrList = Union[Tensor, Sequence[Tensor]]


def match_spatial(student: Tensor, teacher: Tensor) -> tuple:
    """Adaptive-average-pool two feature maps to the smaller H x W ([R] METHODS.md 2.3); others unchanged."""
    if student.dim() != 4 or student.shape[2:] == teacher.shape[2:]:
        return student, teacher
    size = (min(student.shape[2], teacher.shape[2]), min(student.shape[3], teacher.shape[3]))
    return F.adaptive_avg_pool2d(student, size), F.adaptive_avg_pool2d(teacher, size)


@fp32_loss
def kd_zero_loss(genome: Genome, preds_s: Tensor, preds_t: Tensor, weights: Tensor) -> Tensor:
    """``tau^2 * W_f * D_w(T(f_S / tau), T(f_T / tau))`` (Eq. 1); the teacher is detached.

    Args:
        genome: the distiller.
        preds_s: student knowledge, (B, C) or (B, C, H, W), already aligned to the teacher's channels.
        preds_t: teacher knowledge, same shape.
        weights: (B,) calibration weights W_Cal (mean 1 when normalised).

    Returns:
        Scalar loss.
    """
    check_same_shape('KDZeroLoss', preds_s, preds_t)
    s, t = preds_s / genome.tau, preds_t.detach() / genome.tau
    for name in genome.transforms:
        s, t = ops.transform_pair(name, s, t)
    if genome.distance == 'kl':
        dist = ops.kl_distance(s, t, weights, ops.kl_space(genome.t3))
    else:
        dist = ops.DISTANCES[genome.distance](s, t, weights)
    return genome.tau ** 2 * genome.weight * dist


@MODELS.register_module()
class KDZeroLoss(nn.Module):
    """A searched KD-Zero distiller, one entry of ``ConfigurableDistiller.distill_losses``.

    Channel alignment lives in the distiller's ``connectors`` (a 1x1 ``ConvModuleConnector`` for
    features), so the aligner is trained with the student.

    Args:
        genome: dict of :class:`~mmkd_ext.kd_zero.genome.Genome` genes.
        normalize_calibration: rescale W_Cal to mean 1 over the batch ([R] METHODS.md 2.3).
        loss_weight: extra factor on top of the genome's W_f (keep 1.0 to use the searched weight).
        strict_space: validate against the typed search space instead of the full op union.
    """

    def __init__(self, genome: dict, normalize_calibration: bool = True, loss_weight: float = 1.0,
                 strict_space: bool = False) -> None:
        super().__init__()
        self.genome = validate(Genome.from_dict(genome), SearchSpace(slot_typing=strict_space))
        self.normalize_calibration = normalize_calibration
        self.loss_weight = loss_weight

    @fp32_loss
    def forward(self, preds_S: Tensor, preds_T: TensorOrList, logits_S: Optional[Tensor] = None,
                logits_T: Optional[TensorOrList] = None, gt_labels: Optional[Tensor] = None) -> Tensor:
        """Eq. 1 for one teacher; Eq. 3 (sum over teachers) when ``preds_T`` is a list.

        Args:
            preds_S: student knowledge (B, C) / (B, D) / (B, C, H, W); a one-element tuple is unwrapped.
            preds_T: teacher knowledge of the same shape, or a list of them (one per teacher).
            logits_S: (B, K) student logits for the calibration (default: ``preds_S`` for logits knowledge).
            logits_T: (B, K) teacher logits, or a list matching ``preds_T``.
            gt_labels: (B,) class indices (``focal`` / ``conf`` calibrations).

        Returns:
            Scalar loss.
        """
        preds_S = _unwrap(preds_S)
        teachers = [_unwrap(p) for p in preds_T] if isinstance(preds_T, list) else [_unwrap(preds_T)]
        logits_T = logits_T if isinstance(logits_T, list) else [logits_T] * len(teachers)
        if len(logits_T) != len(teachers):
            raise ValueError(f'KDZeroLoss: {len(teachers)} teachers but {len(logits_T)} teacher logits')
        total = preds_S.new_zeros(())
        for pred_t, logit_t in zip(teachers, logits_T):
            weights = self._weights(preds_S, pred_t, logits_S, _unwrap(logit_t), gt_labels)
            total = total + kd_zero_loss(self.genome, *match_spatial(preds_S, pred_t), weights)
        return self.loss_weight * total

    def _weights(self, preds_s: Tensor, preds_t: Tensor, logits_s: Optional[Tensor], logits_t: Optional[Tensor],
                 labels: Optional[Tensor]) -> Tensor:
        name = self.genome.calibration
        if name == 'no':
            return torch.ones(preds_s.shape[0], device=preds_s.device, dtype=preds_s.dtype)
        if logits_s is None or logits_t is None:
            if self.genome.knowledge != 'logits':
                raise ValueError(f"KDZeroLoss: calibration {name!r} with {self.genome.knowledge} knowledge needs "
                                 "logits_S and logits_T: map them to recorders of 'head.fc' in loss_forward_mappings")
            logits_s, logits_t = preds_s, preds_t
        if labels is not None:
            labels = _labels(labels)
        return ops.calibration_weights(name, _unwrap(logits_s), logits_t, labels, self.normalize_calibration)

    def extra_repr(self) -> str:
        return str(self.genome)


def _unwrap(x):
    """Recorders of backbones/necks give one-element tuples; return the tensor."""
    if isinstance(x, (tuple, list)) and len(x) == 1:
        return x[0]
    return x


def _labels(labels: Tensor) -> Tensor:
    """Class indices from indices (B,) or one-hot/soft targets (B, C)."""
    return labels.argmax(dim=1) if labels.dim() == 2 else labels.long()
