"""KD-Zero fitness (METHODS.md 2.4): validation CE + sharpness gap - linear CKA (lower is better).

Classification uses images as samples (:func:`fitness_terms`); segmentation uses pixels (:func:`pixel_sums`,
:func:`segmentation_fitness_terms`).
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

TERMS = ('ce', 'sharpness_gap', 'cka')
SIGNS = {'ce': 1.0, 'sharpness_gap': 1.0, 'cka': -1.0}  # fitness = ce + gap - cka


def _centre(x: Tensor) -> Tensor:
    return x - x.mean(dim=0, keepdim=True)


def linear_hsic(x: Tensor, y: Tensor) -> Tensor:
    """Linear-kernel HSIC up to a constant: ``||Y~^T X~||_F^2`` with column-centred X, Y.

    Args:
        x: (n, d_x).
        y: (n, d_y), same n.

    Returns:
        Scalar.
    """
    return (_centre(y).t() @ _centre(x)).pow(2).sum()


def linear_cka(x: Tensor, y: Tensor) -> Tensor:
    """Linear CKA ``HSIC(X, Y) / sqrt(HSIC(X, X) HSIC(Y, Y))`` (paper Sec. 3.2 fitness).

    Args:
        x: (n, d_x) representation, e.g. student embeddings.
        y: (n, d_y) representation of the same n inputs (no dimension matching needed).

    Returns:
        Scalar in [0, 1].
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f'linear_cka: both representations need the same number of samples, got {x.shape[0]} '
                         f'and {y.shape[0]}')
    x, y = x.double().flatten(1), y.double().flatten(1)
    denom = torch.sqrt(linear_hsic(x, x) * linear_hsic(y, y))
    return (linear_hsic(x, y) / denom.clamp_min(1e-12)).float()


def sharpness(logits: Tensor) -> Tensor:
    """``sharp(z) = logsumexp_c z_c`` per sample (paper Eq. 4). (B, C) -> (B,)."""
    return torch.logsumexp(logits, dim=1)


def sharpness_gap(logits_s: Tensor, logits_t: Tensor) -> Tensor:
    """``|mean_n sharp(z_T) - mean_n sharp(z_S)|`` ([R] absolute value, METHODS.md K3)."""
    return (sharpness(logits_t).mean() - sharpness(logits_s).mean()).abs()


def validation_ce(logits_s: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of the student on the validation samples."""
    return F.cross_entropy(logits_s, labels.long())


def fitness_terms(logits_s: Tensor, logits_t: Tensor, emb_s: Tensor, emb_t: Tensor,
                  labels: Tensor) -> Dict[str, float]:
    """The three fitness terms on one validation set.

    Args:
        logits_s, logits_t: (n, C) student / teacher logits.
        emb_s, emb_t: (n, D_s) / (n, D_t) penultimate embeddings.
        labels: (n,) class indices.

    Returns:
        ``{'ce', 'sharpness_gap', 'cka', 'accuracy'}`` as floats (accuracy in %).
    """
    acc = (logits_s.argmax(1) == labels).float().mean().item() * 100
    return dict(ce=validation_ce(logits_s, labels).item(), sharpness_gap=sharpness_gap(logits_s, logits_t).item(),
                cka=linear_cka(emb_s, emb_t).item(), accuracy=acc)


def pixel_sums(logits_s: Tensor, logits_t: Tensor, labels: Tensor, ignore_index: int = 255) -> Dict[str, float]:
    """Sums over the labelled pixels of one or more label maps, pixels as samples ([R] METHODS.md 2.4 + 2.8).

    Args:
        logits_s, logits_t: (K, H, W) or (B, K, H, W) student / teacher logits at the label resolution.
        labels: (H, W), (1, H, W) or (B, H, W) class indices; ``ignore_index`` pixels are left out.
        ignore_index: label of unlabelled pixels (Cityscapes: 255).

    Returns:
        ``{'pixels', 'ce_sum', 'correct', 'sharp_s_sum', 'sharp_t_sum'}``: the number of labelled pixels, their
        summed CE, correctly classified count and summed sharpness (Eq. 4) of student and teacher.
    """
    if logits_s.dim() == 3:
        logits_s, logits_t = logits_s[None], logits_t[None]
    k = logits_s.shape[1]
    labels = labels.reshape(-1, *logits_s.shape[2:]).long()
    if labels.shape[0] != logits_s.shape[0] or logits_t.shape != logits_s.shape:
        raise ValueError(f'pixel_sums: logits {tuple(logits_s.shape)} / {tuple(logits_t.shape)} and labels '
                         f'{tuple(labels.shape)} do not match (logits must be at the label resolution)')
    valid = labels.flatten() != ignore_index
    rows_s = logits_s.permute(0, 2, 3, 1).reshape(-1, k)[valid].float()
    rows_t = logits_t.permute(0, 2, 3, 1).reshape(-1, k)[valid].float()
    target = labels.flatten()[valid]
    return dict(pixels=float(target.numel()),
                ce_sum=F.cross_entropy(rows_s, target, reduction='sum').item(),
                correct=(rows_s.argmax(1) == target).sum().item(),
                sharp_s_sum=sharpness(rows_s).sum().item(), sharp_t_sum=sharpness(rows_t).sum().item())


def segmentation_fitness_terms(sums: Dict[str, float], emb_s: Tensor, emb_t: Tensor) -> Dict[str, float]:
    """The three fitness terms with pixels as samples, from accumulated :func:`pixel_sums`.

    Args:
        sums: :func:`pixel_sums` added over the validation images.
        emb_s, emb_t: (n, D_s) / (n, D_t) student / teacher features for the linear CKA (pooled per image, or
            sampled pixels).

    Returns:
        ``{'ce', 'sharpness_gap', 'cka', 'accuracy'}``: mean pixel CE, ``|mean sharp(z_T) - mean sharp(z_S)|``
        over pixels, linear CKA, pixel accuracy in %.
    """
    n = sums.get('pixels', 0)
    if n <= 0:
        raise ValueError('segmentation fitness: no labelled pixel in the fitness split (every label is '
                         'ignore_index); check fitness_dataloader and ignore_index')
    return dict(ce=sums['ce_sum'] / n, sharpness_gap=abs(sums['sharp_t_sum'] / n - sums['sharp_s_sum'] / n),
                cka=linear_cka(emb_s, emb_t).item(), accuracy=100.0 * sums['correct'] / n)


def raw_fitness(terms: Dict[str, float]) -> float:
    """``ce + sharpness_gap - cka`` as printed in the paper (lower is better)."""
    return sum(SIGNS[k] * terms[k] for k in TERMS)


def population_fitness(terms: Sequence[Dict[str, float]], normalize: bool = True) -> List[float]:
    """Fitness of each member of a pool; with ``normalize`` every term is z-scored across the pool first.

    Args:
        terms: one dict of :data:`TERMS` per candidate.
        normalize: [R] ``fitness_normalize`` (METHODS.md K4); False sums the raw terms as the paper.

    Returns:
        One fitness per candidate, lower is better.
    """
    if not normalize or len(terms) < 2:
        return [raw_fitness(t) for t in terms]
    scores = [0.0] * len(terms)
    for key in TERMS:
        values = [t[key] for t in terms]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        for i, v in enumerate(values):
            scores[i] += SIGNS[key] * ((v - mean) / std if std > 1e-12 else 0.0)
    return scores
