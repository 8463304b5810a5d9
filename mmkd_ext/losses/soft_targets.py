"""Soft-target losses: soft cross-entropy and temperature-scaled KL (Hinton et al., 2015)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_same_shape
from .precision import fp32_loss


@fp32_loss
def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c q_c log softmax(z)_c``.

    Args:
        logits: (N, C) student logits.
        target_probs: (N, C) target distribution (rows sum to 1).

    Returns:
        Scalar loss.
    """
    check_same_shape('soft_cross_entropy', logits, target_probs)
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


@fp32_loss
def kd_kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 4.0) -> torch.Tensor:
    """``tau^2 * KL(softmax(z_T / tau) || softmax(z_S / tau))``, averaged over the batch.

    Args:
        student_logits: (N, C).
        teacher_logits: (N, C); treated as a constant (detached).
        tau: temperature.

    Returns:
        Scalar loss.
    """
    check_same_shape('kd_kl_divergence', student_logits, teacher_logits)
    p_t = F.softmax(teacher_logits.detach() / tau, dim=1)
    return tau * tau * F.kl_div(F.log_softmax(student_logits / tau, dim=1), p_t, reduction='batchmean')
