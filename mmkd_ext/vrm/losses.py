"""VRM loss (paper Eq. 3 without the CE term): ISV and ICV virtual relation matching.

``L = alpha * L_vrm^ISV + beta * L_vrm^ICV`` with
``L_vrm^ISV = phi(E^ISV_S (.) M, E^ISV_T (.) M)`` (M: unreliable-edge pruning, Eq. 2) and
``L_vrm^ICV = phi(E^ICV_S, E^ICV_T)``. The CE on both student views is added by
:class:`mmkd_ext.vrm.algorithm.VRMDistill`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from torch import Tensor, nn

from ..losses.precision import fp32_loss
from ..registry import MODELS
from . import edges as E

IMPLEMENTATIONS = ('auto', 'gram', 'reference')
RELATION_SCOPES = ('local', 'global')


def gather_rows(x: Tensor) -> Tensor:
    """All ranks' rows of ``x`` concatenated in rank order, differentiable (identity without a process group).

    Ranks may hold different numbers of rows (a last, smaller batch): rows are padded to the largest count for
    ``torch.distributed.nn.functional.all_gather`` (whose backward sums every rank's gradient into the rows of
    their owner) and stripped afterwards.

    Args:
        x: (n_r, ...) rows of this rank.

    Returns:
        (sum_r n_r, ...) rows of all ranks.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([x.shape[0]], device=x.device))
    counts = [int(c) for c in counts]
    pad = max(counts) - x.shape[0]
    if pad:
        x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
    parts = dist_nn.all_gather(x)
    return torch.cat([part[:n] for part, n in zip(parts, counts)])


def gather_views(logits: Tensor, what: str) -> Tensor:
    """(2b_r, C) ``[real; virtual]`` logits of this rank -> (2B, C) ``[all real; all virtual]`` of all ranks."""
    real, virtual = E.split_views(logits, what)
    return torch.cat([gather_rows(real), gather_rows(virtual)])


@dataclass
class RelationOptions:
    """How one relation term is matched (all [R] choices of METHODS.md 5.5-5.7)."""
    distance: str = 'mse'
    implementation: str = 'auto'  # 'gram' (lean), 'reference' (direct), 'auto': gram when it reduces
    chunk_size: Optional[int] = 64  # rows per block of the direct fallback
    eps: float = 1e-8
    degenerate_tol: float = 1e-5


def match_edges(x_s: Tensor, y_s: Tensor, x_t: Tensor, y_t: Tensor, keep: Tensor,
                opts: RelationOptions) -> Tensor:
    """phi between the student and teacher edge tensors of one graph (ISV or ICV).

    Degenerate edges (equal vertices) are dropped from ``keep`` for student and teacher alike; the lean
    Gram path is used for MSE/cosine unless ``implementation='reference'``.

    Args:
        x_s, y_s: (N, D), (M, D) student vertices; x_t, y_t: teacher vertices.
        keep: (N, M) bool mask of edges that survive pruning.
        opts: distance and implementation.

    Returns:
        Scalar loss.
    """
    keep = keep & E.nondegenerate_edge_mask(x_s, y_s, opts.degenerate_tol) \
        & E.nondegenerate_edge_mask(x_t, y_t, opts.degenerate_tol)
    impl = opts.implementation
    if impl == 'auto':
        impl = 'gram' if opts.distance in E.GRAM_DISTANCES else 'reference'
    if impl == 'gram':
        return E.edge_loss_gram(x_s, y_s, x_t, y_t, keep, opts.distance, opts.eps)
    if impl == 'reference':
        chunk = None if opts.implementation == 'reference' else opts.chunk_size
        return E.edge_loss_reference(x_s, y_s, x_t, y_t, keep, opts.distance, opts.eps, chunk)
    raise ValueError(f'VRM: implementation={impl!r} is not one of {IMPLEMENTATIONS}')


def isv_loss(z_s: Tensor, z_s_v: Tensor, z_t: Tensor, z_t_v: Tensor, keep: Tensor, opts: RelationOptions) -> Tensor:
    """L_vrm^ISV: match the (B, B, C) real-virtual inter-sample edges on the kept pairs (Sec. 3.6, Eq. 2-3).

    Args:
        z_s, z_s_v, z_t, z_t_v: (B, C) relation-branch logits (after adaptor / ZSNorm).
        keep: (B, B) bool, from :func:`mmkd_ext.vrm.edges.reliable_edge_mask`.
        opts: distance and implementation.

    Returns:
        Scalar loss.
    """
    return match_edges(z_s, z_s_v, z_t, z_t_v, keep, opts)


def icv_loss(z_s: Tensor, z_s_v: Tensor, z_t: Tensor, z_t_v: Tensor, opts: RelationOptions,
             mode: str = 'bipartite') -> Tensor:
    """L_vrm^ICV: match the (C, C, B) inter-class virtual edges (Sec. 3.6; [R] METHODS.md 5.5).

    Args:
        z_s, z_s_v, z_t, z_t_v: (B, C) relation-branch logits.
        opts: distance and implementation.
        mode: ``'bipartite'`` (default) or ``'diff_vertices'``.

    Returns:
        Scalar loss.
    """
    x_s, y_s = E.icv_vertices(z_s, z_s_v, mode)
    x_t, y_t = E.icv_vertices(z_t, z_t_v, mode)
    c = x_s.size(0)
    if mode == 'diff_vertices':
        keep = E.upper_triangle_mask(c, x_s.device)
    else:
        keep = torch.ones(c, c, dtype=torch.bool, device=x_s.device)
    return match_edges(x_s, y_s, x_t, y_t, keep, opts)


class LogitAdaptor(nn.Module):
    """[R] METHODS.md 5.3: residual MLP on the student logits of the relation branch only.

    ``z + Linear(C, C) -> BN1d -> ReLU -> Linear(C, C)``.

    Args:
        num_classes: C.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(num_classes, num_classes), nn.BatchNorm1d(num_classes), nn.ReLU(inplace=True),
            nn.Linear(num_classes, num_classes))

    def forward(self, logits: Tensor) -> Tensor:
        """(N, C) -> (N, C)."""
        return logits + self.mlp(logits)


@MODELS.register_module()
class VRMLoss(nn.Module):
    """Virtual relation matching loss (paper Eq. 3 relation terms, METHODS.md 5.4-5.7).

    ``forward(preds_S, preds_T)`` takes (2B, C) student and teacher logits laid out as
    ``[real views; virtual views]`` (what :class:`VRMDistill` records on ``head.fc``) and returns
    ``dict(loss_isv=alpha * L^ISV, loss_icv=beta * L^ICV)``.

    Args:
        alpha: weight of L^ISV (paper: 128).
        beta: weight of L^ICV (paper: 32).
        percentile: m of Eq. 2, edges with student joint entropy above P_m are pruned ([R] 90).
        zsnorm: [R] Z-score normalise all logits of the relation branch (default True).
        adaptor: [R] residual MLP on the student's relation-branch logits (default True; needs num_classes).
        num_classes: C, required when ``adaptor=True``.
        icv_mode: [R] ``'bipartite'`` or ``'diff_vertices'`` (METHODS.md 5.5).
        icv_prune: [R] also drop the uncertain samples (per-sample entropy above P_m) from ICV (default False).
        distance: [R] phi: ``'mse'`` (default), ``'smooth_l1'`` or ``'cosine'``.
        implementation: ``'auto'`` (lean Gram path for MSE/cosine, chunked direct path otherwise),
            ``'gram'`` or ``'reference'`` (direct, unchunked).
        chunk_size: rows per block of the chunked direct path ([R] 64).
        eps: floor of the edge norms (METHODS.md 5.4: 1e-8).
        degenerate_tol: relative squared distance under which two vertices count as equal (edge dropped).
        loss_weight: extra factor on both terms (1.0).
        relation_scope: ``'global'`` ([R] default): under DDP the relation graphs span the whole batch B of all
            ranks (logits all-gathered with gradients; every rank computes the same loss, and since the gather's
            backward sums all ranks' gradients, DDP's gradient average equals the one-process gradient of the
            full batch); ``'local'``: each rank relates only its own B / world_size samples. The paper defines
            the graphs over "a batch" of B samples and studies B with LR scaling (Fig. 5); its code and
            supplement are not available (METHODS.md 5.0), hence [R].

    Attribute ``warmup_factor`` (1.0) multiplies both terms too; :class:`VRMLossWarmupHook` ramps it from 0 to 1.
    """

    def __init__(self, alpha: float = 128.0, beta: float = 32.0, percentile: float = 90.0, zsnorm: bool = True,
                 adaptor: bool = True, num_classes: Optional[int] = None, icv_mode: str = 'bipartite',
                 icv_prune: bool = False, distance: str = 'mse', implementation: str = 'auto',
                 chunk_size: Optional[int] = 64, eps: float = 1e-8, degenerate_tol: float = 1e-5,
                 loss_weight: float = 1.0, relation_scope: str = 'global') -> None:
        super().__init__()
        if relation_scope not in RELATION_SCOPES:
            raise ValueError(f'VRMLoss: relation_scope={relation_scope!r} is not one of {RELATION_SCOPES}')
        self.relation_scope = relation_scope
        if distance not in E.DISTANCES:
            raise ValueError(f'VRMLoss: distance={distance!r} is not one of {E.DISTANCES}')
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f'VRMLoss: implementation={implementation!r} is not one of {IMPLEMENTATIONS}')
        if implementation == 'gram' and distance not in E.GRAM_DISTANCES:
            raise ValueError(f"VRMLoss: implementation='gram' supports {E.GRAM_DISTANCES}, not {distance!r}; "
                             "use implementation='auto' to fall back to the chunked direct path")
        if icv_mode not in E.ICV_MODES:
            raise ValueError(f'VRMLoss: icv_mode={icv_mode!r} is not one of {E.ICV_MODES}')
        if not 0 <= percentile <= 100:
            raise ValueError(f'VRMLoss: percentile={percentile} must lie in [0, 100]')
        if adaptor and not num_classes:
            raise ValueError('VRMLoss: adaptor=True builds a (C, C) MLP and needs num_classes=C '
                             '(or set adaptor=False)')
        self.alpha, self.beta, self.percentile = alpha, beta, percentile
        self.zsnorm, self.icv_mode, self.icv_prune = zsnorm, icv_mode, icv_prune
        self.loss_weight = loss_weight
        self.opts = RelationOptions(distance, implementation, chunk_size, eps, degenerate_tol)
        self.adaptor = LogitAdaptor(num_classes) if adaptor else None
        self.warmup_factor = 1.0  # set by VRMLossWarmupHook during its linear ramp

    def relation_logits(self, preds_S: Tensor, preds_T: Tensor) -> tuple:
        """Adaptor on the student, then ZSNorm on both; (2B, C) each -> four (B, C) tensors."""
        if self.adaptor is not None:
            preds_S = self.adaptor(preds_S)
        if self.zsnorm:
            preds_S, preds_T = E.zscore_normalize(preds_S), E.zscore_normalize(preds_T)
        return (*E.split_views(preds_S, 'relation-branch student logits'),
                *E.split_views(preds_T, 'relation-branch teacher logits'))

    @fp32_loss
    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Dict[str, Tensor]:
        """Compute both relation terms.

        Args:
            preds_S: (2b, C) student logits ``[real; virtual]`` of this rank (gradients flow).
            preds_T: (2b, C) teacher logits ``[real; virtual]`` (detached here).

        Returns:
            ``dict(loss_isv=..., loss_icv=...)``, weighted scalars.
        """
        preds_T = preds_T.detach()
        if self.relation_scope == 'global':
            preds_S = gather_views(preds_S, 'student logits (preds_S)')
            preds_T = gather_views(preds_T, 'teacher logits (preds_T)')
        raw_s, raw_s_v = E.split_views(preds_S, 'student logits (preds_S)')
        raw_t, raw_t_v = E.split_views(preds_T, 'teacher logits (preds_T)')
        E.check_view_logits(raw_s, raw_s_v, raw_t, raw_t_v)
        keep = E.reliable_edge_mask(raw_s, raw_s_v, self.percentile)  # Eq. 2 on raw student logits
        z_s, z_s_v, z_t, z_t_v = self.relation_logits(preds_S, preds_T)
        l_isv = isv_loss(z_s, z_s_v, z_t, z_t_v, keep, self.opts)
        if self.icv_prune:
            rows = E.reliable_sample_mask(raw_s, raw_s_v, self.percentile)
            z_s, z_s_v, z_t, z_t_v = z_s[rows], z_s_v[rows], z_t[rows], z_t_v[rows]
        l_icv = icv_loss(z_s, z_s_v, z_t, z_t_v, self.opts, self.icv_mode)
        w = self.loss_weight * self.warmup_factor
        return dict(loss_isv=w * self.alpha * l_isv, loss_icv=w * self.beta * l_icv)
