"""FLOPs-based model scale (METHODS.md §1.2: scale = FLOPs(M) / FLOPs(T)) and the scale solver (§1.3 [R]).

FLOPs are measured once on the unpruned model with MMEngine's complexity analysis
(:class:`mmengine.analysis.FlopAnalyzer`, the counter behind ``get_model_complexity_info``), per module.
Removing structures of a unit scales the FLOPs of the modules it touches by the kept fraction
(a conv between two pruned units by the product of both fractions), which is exact for linear,
convolution, normalisation and attention-matmul FLOPs; :class:`CostModel` evaluates that in
microseconds, so the solver can bisect. ``tests/amd`` checks it against MMEngine's count of the
physically pruned model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from torch import Tensor, nn

from .pruning import PrunableUnit, Ranking


def sdpa_flop_jit(inputs: List, outputs: List) -> int:
    """FLOPs of ``aten::scaled_dot_product_attention`` (QK^T and AV; one multiply-add = one FLOP).

    Args:
        inputs: jit inputs; the first three are q (B, H, N, d), k (B, H, M, d), v (B, H, M, d_v).
        outputs: unused.

    Returns:
        ``B*H*N*M*d + B*H*N*M*d_v``.
    """
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch = 1
    for s in q[:-2]:
        batch *= s
    n, d, m, dv = q[-2], q[-1], k[-2], v[-1]
    return batch * n * m * (d + dv)


def measure_flops(model: nn.Module, inputs: Tuple[Tensor, ...]) -> FlopAnalyzer:
    """Trace ``model(*inputs)`` with MMEngine's FlopAnalyzer (plus an SDPA handle), in eval mode.

    Args:
        model: the model (for mmpretrain/mmseg models the call runs in ``mode='tensor'``).
        inputs: example inputs, e.g. ``(torch.randn(1, 3, 32, 32), )``.

    Returns:
        The analyzer; ``.total()`` and ``.by_module()`` give the counts.
    """
    was_training = model.training
    model.eval()
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
    analyzer.total()  # trace now, while in eval mode
    model.train(was_training)
    return analyzer


def total_flops(model: nn.Module, inputs: Tuple[Tensor, ...]) -> int:
    """Total FLOPs of ``model(*inputs)`` as counted by MMEngine (with the SDPA handle)."""
    return int(measure_flops(model, inputs).total())


@dataclass
class CostModel:
    """FLOPs of the model as a function of the kept fraction of every unit.

    Attributes:
        total: FLOPs of the unpruned model.
        terms: ``(flops, unit names)``: a module whose FLOPs scale with the product of those units' kept fractions.
    """
    total: float
    terms: List[Tuple[float, Tuple[str, ...]]]
    sizes: Dict[str, int]

    @classmethod
    def measure(cls, model: nn.Module, units: Sequence[PrunableUnit], inputs: Tuple[Tensor, ...],
                scope: str = '') -> 'CostModel':
        """Measure per-module FLOPs with MMEngine and attach them to the units that touch each module.

        Args:
            model: the unpruned model.
            units: its prunable units.
            inputs: example inputs.
            scope: count only this sub-module (e.g. ``'backbone'``); ``''`` is the whole model.
        """
        analyzer = measure_flops(model, inputs)
        by_module = analyzer.by_module()
        touching: Dict[str, List[str]] = {}
        for u in units:
            for m in u.cost_modules:
                touching.setdefault(m, []).append(u.name)
        names = sorted(touching)
        for a in names:  # a module counted twice (parent and child) would double its FLOPs
            for b in names:
                if a != b and b.startswith(a + '.'):
                    raise ValueError(f'cost modules {a!r} and {b!r} are nested')
        terms = [(float(by_module.get(m, 0)), tuple(touching[m])) for m in names]
        outside = [m for m in names if scope and not m.startswith(scope + '.')]
        if outside:
            raise ValueError(f'prunable modules {outside[:3]} lie outside the FLOPs scope {scope!r}')
        if scope and scope not in dict(model.named_modules()):
            raise KeyError(f'FLOPs scope {scope!r} is not a module of {type(model).__name__}')
        return cls(float(analyzer.total(scope)), terms, {u.name: u.size for u in units})

    def scale(self, keep: Dict[str, Tensor]) -> float:
        """FLOPs(pruned) / FLOPs(unpruned) for keep vectors ``{unit: (size,) bool}``."""
        frac = {k: float(v.float().mean()) for k, v in keep.items()}
        removed = 0.0
        for flops, units in self.terms:
            kept = 1.0
            for u in units:
                kept *= frac.get(u, 1.0)
            removed += flops * (1.0 - kept)
        return (self.total - removed) / self.total


@dataclass
class ScaleSolution:
    """Result of :func:`solve_ratio`."""
    ratio: float
    scale: float
    keep: Dict[str, Tensor]


def solve_ratio(target: float, ranking: Ranking, scale_fn: Callable[[Dict[str, Tensor]], float],
                tol: float = 0.01, iters: int = 40) -> ScaleSolution:
    """Pruning ratio r whose masks reach ``scale ~= target`` (bisection, METHODS.md §1.3 [R]).

    The scale is monotone non-increasing in r because masks are nested. The solution is the largest
    achieved scale that is ``<= target + tol`` (so the pruned model is never much larger than asked).

    Args:
        target: wanted FLOPs ratio in (0, 1].
        ranking: the nested ranking.
        scale_fn: ``keep -> scale`` (e.g. :meth:`CostModel.scale`).
        tol: accepted overshoot of the scale.
        iters: bisection steps.

    Returns:
        The :class:`ScaleSolution`.

    Raises:
        ValueError: ``target`` is not in (0, 1], or it is below the smallest reachable scale
            (every unit pruned down to its protected structures).
    """
    if not 0 < target <= 1:
        raise ValueError(f'target scale must be in (0, 1], got {target}')
    if target >= 1:
        keep = ranking.keep_for_ratio(0.0)
        return ScaleSolution(0.0, scale_fn(keep), keep)
    floor_keep = ranking.keep_for_ratio(1.0)
    floor = scale_fn(floor_keep)
    if target + tol < floor:
        raise ValueError(f'target scale {target:.4f} is below the smallest reachable scale {floor:.4f} of this '
                         'model (every prunable unit keeps min_keep structures; the non-prunable parts such as '
                         'the stem, embeddings and head stay); choose a target >= that, or lower min_keep')
    lo, hi = 0.0, 1.0  # scale(lo) > target + tol >= scale(hi)
    if scale_fn(ranking.keep_for_ratio(0.0)) <= target + tol:
        hi = 0.0
    else:
        for _ in range(iters):
            mid = (lo + hi) / 2
            if scale_fn(ranking.keep_for_ratio(mid)) <= target + tol:
                hi = mid
            else:
                lo = mid
    keep = ranking.keep_for_ratio(hi)
    return ScaleSolution(hi, scale_fn(keep), keep)


def candidate_scales(student_scale: float, m: int = 9) -> List[float]:
    """Uniform candidate grid from the teacher down to the student, student included (METHODS.md §1.4 [R]).

    ``s_k = 1 - k (1 - s_S) / m``, k = 1..m.

    Args:
        student_scale: s_S in (0, 1).
        m: number of candidates (supp. Table 5: default 9).

    Returns:
        m scales in decreasing order, the last equal to ``student_scale``.
    """
    if not 0 < student_scale < 1:
        raise ValueError(f'student scale must be in (0, 1), got {student_scale}')
    if m < 1:
        raise ValueError(f'the number of candidates m must be >= 1, got {m}')
    return [round(1 - k * (1 - student_scale) / m, 10) for k in range(1, m + 1)]


def example_inputs(shape: Sequence[int], device: torch.device = torch.device('cpu')) -> Tuple[Tensor, ...]:
    """A batch-1 input of ``shape`` (C, H, W) for FLOPs tracing."""
    return (torch.randn(1, *shape, device=device), )
