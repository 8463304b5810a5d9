"""The ACMKD objective as pure functions (paper Eqs. 1-3 and 5-9; METHODS.md 3.3-3.6).

Notation: a "map" below is one attention map of one network at one stage, flattened: (B, D).
Teacher maps are always detached here; student maps keep their gradient.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..losses.precision import fp32_loss
from ..losses.soft_targets import kd_kl_divergence
from .attention import align_channel_attention, align_spatial_attention

ATT_MODES = ('pairwise', 'multilinear', 'pairwise_all')


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``1 - cos(a, b)`` with each row l2-normalised (paper Eq. 5, two-map form).

    Args:
        a: (B, D).
        b: (B, D).

    Returns:
        Scalar in [0, 2].
    """
    if a.shape != b.shape:
        raise ValueError(f'cosine_distance: maps of shape {tuple(a.shape)} and {tuple(b.shape)} differ; '
                         'align them to the teacher first')
    return (1 - F.cosine_similarity(a, b, dim=1, eps=1e-8)).mean()


def multilinear_distance(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Literal Eq. 5: ``1 - sum_k prod_m a_m[k] / ||a_m||`` over the maps of all networks, batch mean.

    Option ``att_mode='multilinear'`` (METHODS.md 3.4): its gradients couple the students directly.

    Args:
        maps: M tensors (B, D), teacher first.

    Returns:
        Scalar.
    """
    prod = None
    for m in maps:
        unit = F.normalize(m, p=2, dim=1, eps=1e-8)
        prod = unit if prod is None else prod * unit
    return (1 - prod.sum(dim=1)).mean()


@fp32_loss
def attention_distance(teacher: torch.Tensor, students: Sequence[torch.Tensor], mode: str = 'pairwise') -> torch.Tensor:
    """rho_i of paper Eq. 5 for one kind of map (channel or spatial) at one stage.

    Args:
        teacher: (B, D) teacher map (detached here).
        students: S student maps (B, D), already aligned to the teacher.
        mode: ``'pairwise'`` ([R] default: mean over students of 1 - cos(teacher, student)),
            ``'multilinear'`` (literal Eq. 5) or ``'pairwise_all'`` (teacher-student and student-student
            pairs, mean over pairs).

    Returns:
        Scalar rho_i.
    """
    teacher = teacher.detach()
    if mode == 'pairwise':
        return torch.stack([cosine_distance(teacher, s) for s in students]).mean()
    if mode == 'multilinear':
        return multilinear_distance([teacher, *students])
    if mode == 'pairwise_all':
        maps = [teacher, *students]
        pairs = [cosine_distance(maps[i], maps[j]) for i in range(len(maps)) for j in range(i + 1, len(maps))]
        return torch.stack(pairs).mean()
    raise ValueError(f'att_mode={mode!r} is unknown; use one of {ATT_MODES}')


@fp32_loss
def attention_similarity_loss(rho_channel: Sequence[torch.Tensor], rho_spatial: Sequence[torch.Tensor]) -> torch.Tensor:
    """``L_att = sum_i (rho_i^s + rho_i^c) / 2`` (paper Eq. 6).

    Args:
        rho_channel: N scalars rho_i^c, one per distilled stage.
        rho_spatial: N scalars rho_i^s.

    Returns:
        Scalar L_att.
    """
    if len(rho_channel) != len(rho_spatial) or not rho_channel:
        raise ValueError(f'need the same, non-zero number of channel ({len(rho_channel)}) and spatial '
                         f'({len(rho_spatial)}) distances')
    return sum((s + c) / 2 for c, s in zip(rho_channel, rho_spatial))


@fp32_loss
def logit_losses(student_logits: Mapping[str, torch.Tensor], teacher_logits: torch.Tensor, labels: torch.Tensor,
                 tau: float = 1.0, lambda_ce: float = 1.0,
                 lambda_kd: float = 1.0) -> Dict[str, Dict[str, torch.Tensor]]:
    """Per-student terms of ``L_logit`` (paper Eqs. 1-3).

    ``L_logit = lambda_0 sum_s CE(y^s, y) + sum_s lambda_s tau^2 KL(softmax(y^T/tau) || softmax(y^s/tau))``;
    [R] C7: each student gets its own CE; [R] C8: KL(teacher || student).

    Args:
        student_logits: name -> (B, K) logits.
        teacher_logits: (B, K) teacher logits (detached).
        labels: (B,) class indices.
        tau: temperature (paper: 1).
        lambda_ce: lambda_0 (paper: 1).
        lambda_kd: lambda_1..3 (paper: 1).

    Returns:
        name -> {'loss_ce': ..., 'loss_kd': ...}, weighted.
    """
    return {
        name: dict(loss_ce=lambda_ce * F.cross_entropy(logits, labels),
                   loss_kd=lambda_kd * kd_kl_divergence(logits, teacher_logits, tau))
        for name, logits in student_logits.items()
    }


@fp32_loss
def ssd_loss(weak_logits: torch.Tensor, strong_logits: Sequence[torch.Tensor], labels: torch.Tensor, tau: float = 1.0,
             lambda_ce: float = 1.0, lambda_kd: float = 1.0) -> Dict[str, torch.Tensor]:
    """Second-stage distillation of the weakest student (paper Eqs. 7-8).

    ``L_ssd = lambda_4 CE(y^low, y) + sum_{a strong} lambda_{5,6} L_KD^{a -> low}``. The strong
    students are frozen for this term: their logits are detached, so it sends no gradient to them.

    Args:
        weak_logits: (B, K) logits of S_low.
        strong_logits: the other students' (B, K) logits.
        labels: (B,).
        tau: temperature (paper: 1).
        lambda_ce: lambda_4 (paper: 1).
        lambda_kd: lambda_5 = lambda_6 (paper: 1).

    Returns:
        {'loss_ssd_ce': ..., 'loss_ssd_kd': ...}, weighted (KD summed over the strong students).
    """
    if not strong_logits:
        raise ValueError('second-stage distillation needs at least one stronger student')
    kd = sum(kd_kl_divergence(weak_logits, s.detach(), tau) for s in strong_logits)
    return dict(loss_ssd_ce=lambda_ce * F.cross_entropy(weak_logits, labels), loss_ssd_kd=lambda_kd * kd)


@fp32_loss
def dml_losses(student_logits: Mapping[str, torch.Tensor], tau: float = 1.0) -> Dict[str, torch.Tensor]:
    """Optional DML term (METHODS.md C4): student s gets ``sum_{s' != s} tau^2 KL(p_{s'}.detach() || p_s)``.

    Args:
        student_logits: name -> (B, K).
        tau: temperature.

    Returns:
        name -> scalar (unweighted; the caller multiplies by gamma).
    """
    names: List[str] = list(student_logits)
    return {
        n: sum(kd_kl_divergence(student_logits[n], student_logits[o], tau) for o in names if o != n)
        for n in names
    }


@fp32_loss
def stagewise_attention_loss(teacher_maps: Sequence, student_maps: Sequence[Sequence],
                             mode: str = 'pairwise') -> torch.Tensor:
    """``L_att`` (paper Eqs. 5-6) from the attention maps of the teacher and of every student.

    Student maps are aligned to the teacher's first: channel vectors linearly interpolated to C_T,
    spatial maps bilinearly resized to H_T x W_T ([R] METHODS.md 3.4).

    Args:
        teacher_maps: one :class:`~mmkd_ext.acmkd.attention.AttentionMaps` per stage (teacher).
        student_maps: per student, one ``AttentionMaps`` per stage (same number of stages).
        mode: see :func:`attention_distance`.

    Returns:
        Scalar L_att.
    """
    rho_c, rho_s = [], []
    for i, t in enumerate(teacher_maps):
        stage = [maps[i] for maps in student_maps]
        channel = [align_channel_attention(m.channel, t.channel.shape[1]) for m in stage]
        spatial = [align_spatial_attention(m.spatial, m.spatial_hw, t.spatial_hw) for m in stage]
        rho_c.append(attention_distance(t.channel, channel, mode))
        rho_s.append(attention_distance(t.spatial, spatial, mode))
    return attention_similarity_loss(rho_c, rho_s)
