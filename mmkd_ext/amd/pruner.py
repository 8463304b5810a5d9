"""``AMDPruner``: masks + ranking + FLOPs scale of one model, the object AMD's stages share."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..compat.checkpoint import load_checkpoint_file
from .flops import CostModel, ScaleSolution, example_inputs, solve_ratio
from .pruning import (
    MaskSet,
    PrunableUnit,
    Ranking,
    default_ranking_scope,
    densify,
    find_units,
    keep_is_nested,
    l1_filter_scores,
    rank,
)
from .slicing import SlicedCandidates


class AMDPruner:
    """Nested structural pruning of one model to FLOPs scales (METHODS.md §1.3).

    Args:
        model: classifier / segmentor with a ``backbone``.
        input_shape: (C, H, W) of the FLOPs measurement (scale = FLOPs ratio, §1.2).
        backbone_name: attribute holding the backbone.
        ffn_granularity: ``'neuron'`` ([R]; the only one, see :func:`~mmkd_ext.amd.pruning.find_units`).
        ranking_scope: ``'global'``/``'stage'``/``'layer'``; None picks the paper default
            (global for ViT, per stage for Swin, per layer for CNNs).
        normalise: layer-wise l2 normalisation before ranking (supp. §1).
        min_keep: structures per layer never pruned ([R] default 1).
        scale_tol: accepted overshoot of the reached scale.
        reference_flops: FLOPs that define scale 1 (default: this model's own FLOPs); set it to the
            original teacher's when pruning a model that is already pruned.
        flops_scope: measure the scale on this sub-module only ([R] ``'backbone'`` for segmentation,
            where the "15% ResNet101" of supp. Table 8 names the backbone); ``''``: the whole model.
        candidate_mode: ``'sliced'`` (default: channel and neuron units run with sliced weights at their own cost,
            heads stay masked; same loss and gradients, see :mod:`mmkd_ext.amd.slicing`) or ``'masked'`` (the
            full-size network with the pruned structures multiplied by 0; needed with SyncBN).
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], backbone_name: str = 'backbone',
                 ffn_granularity: str = 'neuron', ranking_scope: Optional[str] = None, normalise: bool = True,
                 min_keep: int = 1, scale_tol: float = 0.01, reference_flops: Optional[float] = None,
                 flops_scope: str = '', candidate_mode: str = 'sliced') -> None:
        if candidate_mode not in ('masked', 'sliced'):
            raise ValueError(f"pruner.candidate_mode must be 'masked' or 'sliced', got {candidate_mode!r}")
        self.units: List[PrunableUnit] = find_units(model, backbone_name, ffn_granularity)
        self.scope = ranking_scope or default_ranking_scope(self.units, model, backbone_name)
        self.normalise, self.min_keep, self.scale_tol = normalise, min_keep, scale_tol
        device = next(model.parameters()).device
        self.cost = CostModel.measure(model, self.units, example_inputs(input_shape, device), flops_scope)
        self.reference_flops = float(reference_flops or self.cost.total)
        self.masks = MaskSet(model, self.units)
        self.slicer = SlicedCandidates(model, self.units) if candidate_mode == 'sliced' else None
        self.scores: Optional[Dict[str, Tensor]] = None
        self.ranking: Optional[Ranking] = None
        self._solutions: Dict[float, ScaleSolution] = {}
        self.current_scale: Optional[float] = None

    # ranking ---------------------------------------------------------------------------------------
    def set_scores(self, scores: Dict[str, Tensor]) -> None:
        """Rank with importance scores ``{unit name: (size,)}``."""
        full = {}
        for u in self.units:
            if u.name not in scores:
                raise KeyError(f'importance scores miss unit {u.name!r}; were they computed for another model?')
            full[u.name] = scores[u.name].detach().float().cpu()
        self.scores = full
        self.ranking = rank(full, self.units, self.scope, self.normalise, self.min_keep)
        self._solutions.clear()

    def l1_scores(self, model: nn.Module, greedy_scale: Optional[float] = None) -> Dict[str, Tensor]:
        """Filter L1 norms (Li et al. [17]); greedy: ignore inputs removed at ``greedy_scale`` (§1.3 [X]).

        [R] The greedy correction uses the keep vectors of the smallest (target) scale, computed once, so
        one ranking serves every candidate and masks stay nested.
        """
        scores = l1_filter_scores(model, self.units)
        if greedy_scale is None:
            return scores
        self.set_scores(scores)
        keep = self.solve(greedy_scale).keep
        return l1_filter_scores(model, self.units, greedy_keep=keep)

    # scales ----------------------------------------------------------------------------------------
    def scale_of(self, keep: Dict[str, Tensor]) -> float:
        """FLOPs(pruned) / reference FLOPs."""
        return self.cost.scale(keep) * self.cost.total / self.reference_flops

    def solve(self, scale: float) -> ScaleSolution:
        """Masks that reach ``scale`` (cached; see :func:`mmkd_ext.amd.flops.solve_ratio`)."""
        if self.ranking is None:
            raise RuntimeError('AMDPruner has no ranking yet: call set_scores() (importance stage) first')
        key = round(float(scale), 6)
        if key not in self._solutions:
            self._solutions[key] = solve_ratio(scale, self.ranking, self.scale_of, self.scale_tol)
        return self._solutions[key]

    def keep(self, scale: float) -> Dict[str, Tensor]:
        return self.solve(scale).keep

    def apply(self, scale: Optional[float]) -> None:
        """Set the binary masks of ``scale`` (None or >= the model's own scale: all ones)."""
        self.current_scale = scale
        keep = None if scale is None or scale >= self.cost.total / self.reference_flops - 1e-9 else self.keep(scale)
        if self.slicer is not None:
            self.slicer.set_keep(keep)
            if keep is not None:  # the sliced units' masks stay 1; heads / layer-FFN masks as usual
                keep = {n: torch.ones_like(k) if n in self.slicer.names else k for n, k in keep.items()}
        if keep is None:
            self.masks.reset()
        else:
            self.masks.set_keep(keep)

    def check_nested(self, scales: Sequence[float]) -> bool:
        """True when the masks of the sorted ``scales`` are nested (supp. §8.3)."""
        ordered = sorted(scales)
        return all(keep_is_nested(self.keep(a), self.keep(b)) for a, b in zip(ordered, ordered[1:]))

    def densify(self, model: nn.Module, scale: float) -> Dict[str, int]:
        """Remove the hooks and physically prune ``model`` to ``scale``; returns the kept widths."""
        keep = self.keep(scale)
        if self.slicer is not None:
            self.slicer.remove()
        self.masks.remove()
        return densify(model, self.units, {k: v.clone() for k, v in keep.items()})

    def state(self) -> dict:
        return dict(scores=self.scores, scope=self.scope, reference_flops=self.reference_flops)


def load_scores(path: str) -> Dict[str, Tensor]:
    """Scores saved by the importance stage (``torch.save({'scores': ...})``)."""
    obj = load_checkpoint_file(path, map_location='cpu')
    if 'scores' not in obj:
        raise KeyError(f'{path} holds no "scores"; it is not an AMD importance file')
    return obj['scores']
