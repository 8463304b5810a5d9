"""Optimal teacher-assistant selection (METHODS.md §1.6; NPSD formula [MISSING] in the supplement).

Candidates are sorted by decreasing scale s_1 > ... > s_m with validation accuracies P_k in [0, 1].

- NPSD ([R]/[X] "negative performance-scale derivative"): ``NPSD_k = (P_k - P_{k+1}) / (s_k - s_{k+1})``,
  the accuracy lost per unit of scale removed between neighbours.
- ``'lambda_tradeoff'`` (default, [X] MiniDisc): ``k* = argmax_k P_k + lambda (1 - s_k)``, lambda = 0.2.
- ``'npsd_threshold'``: the smallest candidate before the curve breaks,
  ``k* = max{k : NPSD_j < lambda for all j < k}``.
- ``'oracle'`` (supp. §4 manual selection): the candidate whose distilled student is best.

The accuracies P_k are measured on ``split`` ([R] :data:`SELECTION_SPLITS`): ``'held_out'`` (default), one
training image in ``held_out_every``, left out of the joint training (:mod:`mmkd_ext.held_out`), so the TA is
not chosen on the split the student is reported on; ``'val'``, the config's ``val_dataloader`` (the old
behaviour; for CIFAR-100 that is the test set).
"""
from __future__ import annotations

from typing import Optional, Sequence

SELECTION_RULES = ('lambda_tradeoff', 'npsd_threshold', 'oracle')
SELECTION_SPLITS = ('held_out', 'val')


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SELECTION_SPLITS`, else a ValueError saying what to set."""
    if split not in SELECTION_SPLITS:
        raise ValueError(f'amd.selection.split={split!r}; use one of {SELECTION_SPLITS}')
    return split


def _check_curve(scales: Sequence[float], accuracies: Sequence[float]) -> None:
    if len(scales) != len(accuracies) or not scales:
        raise ValueError(f'need one accuracy per candidate, got {len(scales)} scales and {len(accuracies)} accuracies')
    if any(b >= a for a, b in zip(scales, scales[1:])):
        raise ValueError(f'candidate scales must be strictly decreasing (largest first), got {list(scales)}')
    if any(not 0 <= p <= 1 for p in accuracies):
        raise ValueError(f'accuracies must be fractions in [0, 1] (divide percentages by 100), got {list(accuracies)}')


def npsd(scales: Sequence[float], accuracies: Sequence[float]) -> list:
    """Finite-difference negative performance-scale derivative (METHODS.md §1.6 [R]).

    Args:
        scales: m decreasing scales.
        accuracies: m accuracies in [0, 1].

    Returns:
        m - 1 values, ``(P_k - P_{k+1}) / (s_k - s_{k+1})``.
    """
    _check_curve(scales, accuracies)
    return [(accuracies[k] - accuracies[k + 1]) / (scales[k] - scales[k + 1]) for k in range(len(scales) - 1)]


def select_lambda_tradeoff(scales: Sequence[float], accuracies: Sequence[float], lam: float = 0.2,
                           min_scale: Optional[float] = None) -> int:
    """``argmax_k P_k + lambda (1 - s_k)`` ([X] MiniDisc, lambda = 0.2); ties go to the smaller scale.

    Args:
        scales: decreasing scales.
        accuracies: accuracies in [0, 1].
        lam: the trade-off lambda.
        min_scale: the target (student) scale; a smaller-scale argmax is clamped to it.

    Returns:
        Index of the selected candidate.
    """
    _check_curve(scales, accuracies)
    allowed = [k for k, s in enumerate(scales) if min_scale is None or s >= min_scale - 1e-9]
    if not allowed:
        raise ValueError(f'no candidate has scale >= the target {min_scale}')
    objective = [accuracies[k] + lam * (1 - scales[k]) for k in allowed]
    best = max(objective)
    return max(k for k, o in zip(allowed, objective) if o >= best - 1e-12)


def select_npsd_threshold(scales: Sequence[float], accuracies: Sequence[float], threshold: float = 0.2) -> int:
    """The smallest candidate reached while every NPSD so far stays below ``threshold`` (§1.6 [R]).

    Args:
        scales: decreasing scales.
        accuracies: accuracies in [0, 1].
        threshold: NPSD limit (accuracy fraction lost per unit of scale).

    Returns:
        ``max{k : NPSD_j < threshold for all j < k}`` (0 when the first step already breaks).
    """
    slopes = npsd(scales, accuracies)
    k = 0
    while k < len(slopes) and slopes[k] < threshold:
        k += 1
    return k


def select_oracle(student_accuracies: Sequence[float]) -> int:
    """Manual selection (supp. §4): the candidate whose distilled student scored best (first on ties)."""
    if not student_accuracies:
        raise ValueError('oracle selection needs the student accuracy of every candidate')
    best = max(student_accuracies)
    return list(student_accuracies).index(best)


def select(rule: str, scales: Sequence[float], accuracies: Sequence[float], lam: float = 0.2,
           npsd_threshold: float = 0.2, student_accuracies: Optional[Sequence[float]] = None,
           min_scale: Optional[float] = None) -> int:
    """Dispatch to a rule of :data:`SELECTION_RULES`; returns the selected index."""
    if rule == 'lambda_tradeoff':
        return select_lambda_tradeoff(scales, accuracies, lam, min_scale)
    if rule == 'npsd_threshold':
        return select_npsd_threshold(scales, accuracies, npsd_threshold)
    if rule == 'oracle':
        if student_accuracies is None:
            raise ValueError("selection rule 'oracle' needs student_accuracies (distil from every candidate)")
        return select_oracle(student_accuracies)
    raise ValueError(f'unknown selection rule {rule!r}; choose one of {SELECTION_RULES}')


def plot_selection(path: str, scales: Sequence[float], accuracies: Sequence[float], selected: int,
                   teacher_accuracy: Optional[float] = None, title: str = 'AMD candidates') -> str:
    """PNG of accuracy and NPSD against scale, the chosen TA marked.

    Args:
        path: output ``.png``.
        scales: decreasing scales.
        accuracies: accuracies in [0, 1].
        selected: index of the chosen teacher assistant.
        teacher_accuracy: drawn as a dashed line at scale 1 when given.
        title: figure title.

    Returns:
        ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    slopes = npsd(scales, accuracies)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([100 * s for s in scales], [100 * p for p in accuracies], 'o-', label='candidate accuracy')
    ax.plot([100 * scales[selected]], [100 * accuracies[selected]], 'r*', markersize=16, label='selected TA')
    if teacher_accuracy is not None:
        ax.axhline(100 * teacher_accuracy, color='gray', linestyle='--', label='teacher')
    ax.set_xlabel('scale (% of teacher FLOPs)')
    ax.set_ylabel('top-1 accuracy (%)')
    ax.invert_xaxis()
    ax2 = ax.twinx()
    mids = [50 * (a + b) for a, b in zip(scales, scales[1:])]
    ax2.plot(mids, slopes, 's--', color='tab:orange', label='NPSD')
    ax2.set_ylabel('NPSD (accuracy lost per unit scale)')
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc='lower left')
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
