"""AMD's per-candidate loss (METHODS.md §1.5): ``L = L_ce + alpha * L_logit + beta * L_feat``.

The supplement names the three terms (Table 4) and alpha = 1 (§5.1); the main-paper Eq. 3 is
[MISSING], so tau, beta and the feature term's form are our [R] resolutions, all configurable.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_same_shape
from ..losses.precision import fp32_loss
from ..losses.soft_targets import kd_kl_divergence


def _class_last(logits: Tensor) -> Tensor:
    """(B, C) -> (B, C); (B, C, *S) -> (B * prod(S), C) so every pixel is one distribution."""
    if logits.dim() == 2:
        return logits
    return logits.movedim(1, -1).reshape(-1, logits.shape[1])


@fp32_loss
def logit_kd(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """``tau^2 KL(softmax(z_t/tau) || softmax(z_s/tau))``, mean over examples or pixels ([R] §1.5, §1.9).

    Args:
        student_logits: (B, C) or (B, C, H, W).
        teacher_logits: same shape; detached.
        tau: temperature ([R] default 1).

    Returns:
        Scalar loss.
    """
    check_same_shape('amd logit_kd', student_logits, teacher_logits)
    return kd_kl_divergence(_class_last(student_logits), _class_last(teacher_logits), tau)


@fp32_loss
def dkd(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, zeta: float = 1.0, eta: float = 8.0,
        tau: float = 4.0) -> Tensor:
    """Decoupled KD (Zhao et al., CVPR 2022): ``zeta * TCKD + eta * NCKD`` (supp. Table 4 "w/ L_dkd").

    Args:
        student_logits: (B, C).
        teacher_logits: (B, C); detached.
        labels: (B,) ground-truth classes.
        zeta: TCKD weight ([R] DKD default 1).
        eta: NCKD weight ([R] DKD default 8).
        tau: temperature ([R] DKD default 4).

    Returns:
        Scalar loss.
    """
    check_same_shape('amd dkd', student_logits, teacher_logits)
    t = teacher_logits.detach()
    gt = F.one_hot(labels, student_logits.shape[1]).bool()
    p_s, p_t = F.softmax(student_logits / tau, 1), F.softmax(t / tau, 1)
    b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], 1).clamp_min(1e-8)
    b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], 1).clamp_min(1e-8)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1).mean() * tau ** 2
    big = 1000.0 * gt  # remove the target class from the non-target distributions
    log_q_s = F.log_softmax(student_logits / tau - big, 1)
    q_t = F.softmax(t / tau - big, 1)
    nckd = (q_t * (torch.log(q_t.clamp_min(1e-12)) - log_q_s)).masked_fill(gt, 0).sum(1).mean() * tau ** 2
    return zeta * tckd + eta * nckd


@fp32_loss
def feature_mimic(student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> Tensor:
    """``(1/L) sum_l MSE(h_s^l, h_t^l)`` over recorded block/stage outputs ([R] §1.5).

    Args:
        student_feats: L tensors, e.g. (B, N, D) tokens or (B, C, H, W) maps (after any connector).
        teacher_feats: L tensors of the same shapes; detached.

    Returns:
        Scalar loss (0 when L = 0).
    """
    if len(student_feats) != len(teacher_feats):
        raise ValueError(f'feature_mimic got {len(student_feats)} student and {len(teacher_feats)} teacher features')
    if not student_feats:
        return torch.zeros(())
    losses = []
    for i, (s, t) in enumerate(zip(student_feats, teacher_feats)):
        check_same_shape(f'amd feature_mimic[{i}]', s, t)
        losses.append(F.mse_loss(s, t.detach()))
    return torch.stack(losses).mean()
