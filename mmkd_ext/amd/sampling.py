"""Which candidates train in a joint step (issue 26): all of them, a sandwich, or a single one.

Supp. Algorithm 1 as printed trains every candidate each step, so the joint stage costs m candidate
forward/backward passes per step. ``candidates_per_step`` of :class:`~mmkd_ext.amd.algorithm.AMDDistill`
trains a subset instead ([R] ours; the MiniDisc code has a commented-out subset rule):

- ``'all'``: every candidate (the supplement; the default);
- ``'sandwich'``: the largest, the smallest and ``num_random`` random middle candidates (the sandwich rule of
  slimmable networks / BigNAS); ``num_random >= m - 2`` is ``'all'``;
- ``'single'``: one random candidate.

The subset is a pure function of ``(seed, iteration)``, so every DDP rank draws the same one without
communication, and a resumed run (the iteration is a buffer of the algorithm) continues the same sequence.
"""
from __future__ import annotations

import hashlib
from typing import List, Optional, Sequence

import torch

CANDIDATE_MODES = ('all', 'sandwich', 'single')


def check_candidates_per_step(cfg: Optional[dict]) -> dict:
    """``cfg`` completed with the defaults ``mode='all', num_random=2, seed=0``; a clear error for bad values.

    Args:
        cfg: ``dict(mode=..., num_random=..., seed=...)`` or None.

    Returns:
        The completed settings.
    """
    out = dict(mode='all', num_random=2, seed=0)
    unknown = set(cfg or {}) - set(out)
    if unknown:
        raise KeyError(f'AMDDistill.candidates_per_step: unknown keys {sorted(unknown)}; known: {sorted(out)}')
    out.update(cfg or {})
    if out['mode'] not in CANDIDATE_MODES:
        raise ValueError(f"AMDDistill.candidates_per_step.mode={out['mode']!r}; use one of {CANDIDATE_MODES}")
    if int(out['num_random']) < 0:
        raise ValueError(f"AMDDistill.candidates_per_step.num_random must be >= 0, got {out['num_random']}")
    return out


def step_generator(seed: int, iteration: int) -> torch.Generator:
    """A CPU generator seeded from sha256 of ``(seed, iteration)`` (the same on every rank and after resume)."""
    digest = hashlib.sha256(f'{int(seed)}:{int(iteration)}'.encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def candidate_subset(scales: Sequence[float], iteration: int, mode: str = 'all', num_random: int = 2,
                     seed: int = 0) -> List[float]:
    """The candidates trained at ``iteration``, in the order of ``scales`` (largest first, smallest last).

    Args:
        scales: the m candidate scales, decreasing.
        iteration: the joint step (0-based).
        mode: one of :data:`CANDIDATE_MODES`.
        num_random: random middle candidates of ``'sandwich'``.
        seed: seed of the subset sequence.

    Returns:
        The subset: all m, ``min(m, num_random + 2)`` (sandwich) or 1 (single) scales.
    """
    scales = list(scales)
    middle = scales[1:-1]
    if mode == 'all' or (mode == 'sandwich' and num_random >= len(middle)):
        return scales
    g = step_generator(seed, iteration)
    if mode == 'single':
        return [scales[int(torch.randint(len(scales), (1,), generator=g))]]
    if mode != 'sandwich':
        raise ValueError(f'candidate mode {mode!r}; use one of {CANDIDATE_MODES}')
    picked = sorted(torch.randperm(len(middle), generator=g)[:num_random].tolist())
    return [scales[0], *(middle[i] for i in picked), scales[-1]]
