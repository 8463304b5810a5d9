"""Virtual relation edges of VRM (Zhang et al., "Virtual Relation Matching"), as pure functions.

Notation (METHODS.md section 5): ``z``/``z_v`` are (B, C) logits of the real/virtual views.
An *edge* between vertices ``x_i`` and ``y_j`` is the unit difference vector
``(x_i - y_j) / ||x_i - y_j||_2`` (paper Eq. 1). VRM keeps only cross-view edges (redundant-edge
pruning, paper Sec. 3.6):

* ISV: vertices are samples, ``x = z`` (real), ``y = z_v`` (virtual): a (B, B, C) edge tensor;
* ICV: vertices are classes, ``x = z.T``, ``y = z_v.T``: a (C, C, B) edge tensor ([R] bipartite reading,
  METHODS.md 5.5), or with ``icv_mode='diff_vertices'`` vertices ``v_c = z[:, c] - z_v[:, c]`` and edges
  ``v_c - v_d`` for ``c < d``.

Matching two edge tensors (student vs teacher) with MSE or cosine distance only needs the inner
products ``<e^S_ij, e^T_ij>``, which expand into N x N Gram products (:func:`edge_loss_gram`, memory
O(N^2 + N D)); the direct implementation (:func:`edge_loss_reference`) materialises N x N x D tensors and
is kept as the reference and as the (chunked) fallback for distances that do not reduce (smooth-L1).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

DISTANCES = ('mse', 'smooth_l1', 'cosine')
GRAM_DISTANCES = ('mse', 'cosine')  # the distances whose edge loss reduces to Gram products
ICV_MODES = ('bipartite', 'diff_vertices')


# --------------------------------------------------------------------------- inputs and views
def split_views(preds: Tensor, name: str = 'preds') -> Tuple[Tensor, Tensor]:
    """Split a (2B, C) two-view batch ``[real; virtual]`` into its (B, C) real and virtual halves.

    Args:
        preds: (2B, C) logits, the first B rows from the real views, the last B from the virtual views.
        name: what ``preds`` is, for the error message.

    Returns:
        ``(real, virtual)``, each (B, C).
    """
    if preds.dim() != 2:
        raise ValueError(f'VRM: {name} must be (2B, C) logits, got shape {tuple(preds.shape)}')
    if preds.size(0) % 2:
        raise ValueError(
            f'VRM: {name} has {preds.size(0)} rows, which is odd, so it cannot be [real views; virtual views]; '
            'add the VRMVirtualView transform to the train pipeline and train with VRMDistill so every image '
            'contributes a real and a virtual view')
    return preds.chunk(2, dim=0)


def check_view_logits(z_s: Tensor, z_s_v: Tensor, z_t: Tensor, z_t_v: Tensor) -> None:
    """Raise ``ValueError`` unless all four are (B, C) with B >= 2 and C >= 2 and equal shapes.

    Args:
        z_s, z_s_v: student logits of the real / virtual views, (B, C).
        z_t, z_t_v: teacher logits of the real / virtual views, (B, C).
    """
    shapes = {name: tuple(t.shape) for name, t in
              (('student real', z_s), ('student virtual', z_s_v), ('teacher real', z_t), ('teacher virtual', z_t_v))}
    if len(set(shapes.values())) != 1 or z_s.dim() != 2:
        raise ValueError(f'VRM: the four logit tensors must share one (B, C) shape, got {shapes}; check that '
                         'student and teacher heads have the same num_classes and both views are present')
    b, c = z_s.shape
    if b < 2:
        raise ValueError(f'VRM: batch size {b} gives no inter-sample relations; use a batch of at least 2 images '
                         '(per GPU)')
    if c < 2:
        raise ValueError(f'VRM: {c} class(es) give no inter-class relations and no prediction entropy; '
                         'VRM needs logits with at least 2 classes')


def zscore_normalize(logits: Tensor, eps: float = 1e-7) -> Tensor:
    """ZSNorm of each row (logit standardisation as in LSKD; [R] METHODS.md 5.3).

    Args:
        logits: (N, C).
        eps: added to the (unbiased) standard deviation.

    Returns:
        (N, C) ``(z - mean_c z) / (std_c z + eps)``.
    """
    mean = logits.mean(dim=1, keepdim=True)
    return (logits - mean) / (logits.std(dim=1, keepdim=True) + eps)


# --------------------------------------------------------------------------- edges (Eq. 1)
def cross_edges(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Edges ``E[i, j] = (x_i - y_j) / max(||x_i - y_j||_2, eps)`` between two vertex sets (Eq. 1).

    Args:
        x: (N, D) vertices of one view.
        y: (M, D) vertices of the other view.
        eps: floor of the norm (a zero difference gives a zero edge, not NaN).

    Returns:
        (N, M, D) edge tensor.
    """
    diff = x[:, None, :] - y[None, :, :]
    return diff / diff.norm(dim=2, keepdim=True).clamp_min(eps)


def isv_vertices(z: Tensor, z_v: Tensor) -> Tuple[Tensor, Tensor]:
    """Vertices of the inter-sample virtual graph: real samples vs virtual samples (Sec. 3.6).

    Args:
        z, z_v: (B, C) logits of the real / virtual views.

    Returns:
        ``(z, z_v)``: the edges ``cross_edges(z, z_v)`` are E^ISV, (B, B, C).
    """
    return z, z_v


def icv_vertices(z: Tensor, z_v: Tensor, mode: str = 'bipartite') -> Tuple[Tensor, Tensor]:
    """Vertices of the inter-class virtual graph (Sec. 3.6; [R] METHODS.md 5.5).

    Args:
        z, z_v: (B, C) logits of the real / virtual views.
        mode: ``'bipartite'``: real class vectors ``z[:, c]`` vs virtual class vectors ``z_v[:, d]``;
            ``'diff_vertices'``: both sets are ``v_c = z[:, c] - z_v[:, c]`` (pair with
            :func:`upper_triangle_mask` so each unordered pair counts once).

    Returns:
        ``(x, y)``, each (C, B): ``cross_edges(x, y)`` is E^ICV, (C, C, B).
    """
    if mode == 'bipartite':
        return z.t(), z_v.t()
    if mode == 'diff_vertices':
        v = (z - z_v).t()
        return v, v
    raise ValueError(f"VRM: icv_mode={mode!r} is not one of {ICV_MODES}")


def upper_triangle_mask(n: int, device: Optional[torch.device] = None) -> Tensor:
    """(n, n) bool mask of ``i < j``: one edge per unordered pair (E[i, j] = -E[j, i], Sec. 3.6)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(diagonal=1)


# --------------------------------------------------------------------------- masks
def nondegenerate_edge_mask(x: Tensor, y: Tensor, tol: float = 1e-5) -> Tensor:
    """Edges whose two vertices differ, so that the unit edge vector is defined ([R] METHODS.md 5.4).

    A pair is degenerate when ``||x_i - y_j||^2 <= tol * (||x_i||^2 + ||y_j||^2)`` after centring both sets
    on their joint mean (duplicate images, or the diagonal of the ``diff_vertices`` ICV graph). The
    relative ``tol`` sits above float32 rounding of the Gram expansion used here.

    Args:
        x: (N, D), y: (M, D) vertices (no gradient is taken).
        tol: relative tolerance.

    Returns:
        (N, M) bool, True where the edge is kept.
    """
    with torch.no_grad():
        x, y = _centre(x, y)
        sq_x, sq_y = x.pow(2).sum(1), y.pow(2).sum(1)
        dist2 = sq_x[:, None] + sq_y[None, :] - 2 * x @ y.t()
        return dist2 > tol * (sq_x[:, None] + sq_y[None, :]).clamp_min(torch.finfo(x.dtype).tiny)


def prediction_entropy(logits: Tensor) -> Tensor:
    """Shannon entropy (nats) of ``softmax(logits)`` per row. (N, C) -> (N,)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def joint_entropy(z_s: Tensor, z_s_v: Tensor) -> Tensor:
    """Joint entropy ``H(z_i^s, z~_j^s)`` of every real/virtual student pair (Eq. 2).

    [R] METHODS.md 5.6 (V3): the two predictions are independent distributions, so
    ``H(p_i (x) q_j) = H(p_i) + H(q_j)``, with ``p = softmax(z_s)``, ``q = softmax(z_s_v)`` at temperature 1.

    Args:
        z_s, z_s_v: (B, C) raw student logits of the real / virtual views.

    Returns:
        (B, B) joint entropies, row i = real sample, column j = virtual sample.
    """
    return prediction_entropy(z_s)[:, None] + prediction_entropy(z_s_v)[None, :]


def percentile(values: Tensor, m: float) -> Tensor:
    """The m-th percentile of all entries, linear interpolation (as ``numpy.percentile``).

    Uses ``kthvalue`` so it has no size limit (``torch.quantile`` stops at 2^24 entries).

    Args:
        values: any shape, at least one entry.
        m: percentile in [0, 100].

    Returns:
        0-dim tensor.
    """
    if not 0 <= m <= 100:
        raise ValueError(f'VRM: percentile m={m} must lie in [0, 100]')
    flat = values.reshape(-1)
    pos = (flat.numel() - 1) * m / 100.0
    lo, hi = int(pos), min(int(pos) + 1, flat.numel() - 1)
    v_lo = flat.kthvalue(lo + 1).values
    v_hi = flat.kthvalue(hi + 1).values
    return v_lo + (v_hi - v_lo) * (pos - lo)


def reliable_edge_mask(z_s: Tensor, z_s_v: Tensor, m: float = 90.0) -> Tensor:
    """Unreliable-edge pruning of ISV (Eq. 2): drop edge (i, j) if ``H(z_i^s, z~_j^s) > P_m``.

    Computed on the **student** predictions only, without gradient, anew at every step.

    Args:
        z_s, z_s_v: (B, C) raw student logits of the real / virtual views.
        m: the percentile ([R] 90: drop the ~10% most uncertain edges).

    Returns:
        (B, B) bool, True for kept edges.
    """
    with torch.no_grad():
        h = joint_entropy(z_s.detach(), z_s_v.detach())
        return h <= percentile(h, m)


def reliable_sample_mask(z_s: Tensor, z_s_v: Tensor, m: float = 90.0) -> Tensor:
    """[R] option ``icv_prune``: keep samples b with ``H(p_b) + H(q_b) <= P_m`` over the batch.

    Args:
        z_s, z_s_v: (B, C) raw student logits.
        m: the percentile.

    Returns:
        (B,) bool, True for kept samples.
    """
    with torch.no_grad():
        h = prediction_entropy(z_s.detach()) + prediction_entropy(z_s_v.detach())
        return h <= percentile(h, m)


# --------------------------------------------------------------------------- edge matching (Eq. 3 terms)
def _edge_distance(e_s: Tensor, e_t: Tensor, distance: str) -> Tensor:
    """Per-edge distance summed over the edge dimension: (..., D) x 2 -> (...)."""
    if distance == 'mse':
        return (e_s - e_t).pow(2).sum(-1)
    if distance == 'smooth_l1':
        return F.smooth_l1_loss(e_s, e_t, reduction='none').sum(-1)
    if distance == 'cosine':  # edges are unit vectors, so the inner product is the cosine
        return 1 - (e_s * e_t).sum(-1)
    raise ValueError(f'VRM: distance={distance!r} is not one of {DISTANCES}')


def _normaliser(keep: Tensor, dim: int, distance: str) -> Tensor:
    """Number of averaged elements: kept edges x D for element-wise distances, kept edges for cosine."""
    n_edges = keep.sum().clamp_min(1)
    return n_edges if distance == 'cosine' else n_edges * dim


def _edge_chunk_sum(x_s: Tensor, y_s: Tensor, x_t: Tensor, y_t: Tensor, keep: Tensor, distance: str,
                    eps: float) -> Tensor:
    dist = _edge_distance(cross_edges(x_s, y_s, eps), cross_edges(x_t, y_t, eps), distance)
    return (dist * keep).sum()


def edge_loss_reference(x_s: Tensor, y_s: Tensor, x_t: Tensor, y_t: Tensor, keep: Tensor, distance: str = 'mse',
                        eps: float = 1e-8, chunk_size: Optional[int] = None) -> Tensor:
    """phi(E_S (.) M, E_T (.) M) by materialising the edge tensors (the direct implementation, Eq. 3 terms).

    ``'mse'``/``'smooth_l1'`` average over the kept elements (kept edges x D), ``'cosine'`` (1 - cos)
    over the kept edges. With ``chunk_size``, rows of ``x`` are processed in blocks under activation
    checkpointing, so peak memory is O(chunk_size * M * D) in forward and backward.

    Args:
        x_s, y_s: (N, D), (M, D) student vertices (gradients flow through them).
        x_t, y_t: (N, D), (M, D) teacher vertices (treated as constants).
        keep: (N, M) bool mask of the edges that enter the loss.
        distance: one of :data:`DISTANCES`.
        eps: norm floor of :func:`cross_edges`.
        chunk_size: rows per block, or None for one block.

    Returns:
        Scalar loss (0 when no edge is kept).
    """
    x_t, y_t, keep = x_t.detach(), y_t.detach(), keep.to(x_s.dtype)
    if chunk_size is None or chunk_size >= x_s.size(0):
        total = _edge_chunk_sum(x_s, y_s, x_t, y_t, keep, distance, eps)
    else:
        total = x_s.new_zeros(())
        for start in range(0, x_s.size(0), chunk_size):
            rows = slice(start, start + chunk_size)
            total = total + checkpoint(_edge_chunk_sum, x_s[rows], y_s, x_t[rows], y_t, keep[rows], distance, eps,
                                       use_reentrant=False)
    return total / _normaliser(keep, x_s.size(1), distance)


def _centre(x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
    """Shift both vertex sets by their joint mean (a constant: no gradient): differences are unchanged and the
    Gram expansion loses less to rounding."""
    mean = torch.cat([x, y]).mean(dim=0, keepdim=True).detach()
    return x - mean, y - mean


def edge_cosines_gram(x_s: Tensor, y_s: Tensor, x_t: Tensor, y_t: Tensor, eps: float = 1e-8) -> Tensor:
    """``<e^S_ij, e^T_ij>`` for all pairs without building the edge tensors (memory O(NM + (N+M)D)).

    ``<(x_i - y_j), (u_i - v_j)> = <x_i,u_i> - <x_i,v_j> - <y_j,u_i> + <y_j,v_j>`` and
    ``||x_i - y_j||^2 = ||x_i||^2 + ||y_j||^2 - 2<x_i,y_j>``: four (N, M) matrix products.

    Args:
        x_s, y_s: (N, D), (M, D) student vertices; x_t, y_t: teacher vertices (u, v above).
        eps: norm floor, as in :func:`cross_edges`.

    Returns:
        (N, M) inner products of the student and teacher unit edges.
    """
    x_s, y_s = _centre(x_s, y_s)
    x_t, y_t = _centre(x_t.detach(), y_t.detach())
    dot = ((x_s * x_t).sum(1)[:, None] - x_s @ y_t.t() - x_t @ y_s.t() + (y_s * y_t).sum(1)[None, :])
    norm_s = _pair_sq_dist(x_s, y_s).clamp_min(eps * eps).sqrt()
    norm_t = _pair_sq_dist(x_t, y_t).clamp_min(eps * eps).sqrt()
    return dot / (norm_s * norm_t)


def _pair_sq_dist(x: Tensor, y: Tensor) -> Tensor:
    """(N, M) ``||x_i - y_j||^2`` via the Gram expansion (clamped at 0)."""
    return (x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2 * x @ y.t()).clamp_min(0)


def edge_loss_gram(x_s: Tensor, y_s: Tensor, x_t: Tensor, y_t: Tensor, keep: Tensor, distance: str = 'mse',
                   eps: float = 1e-8) -> Tensor:
    """The memory-lean equivalent of :func:`edge_loss_reference` for MSE and cosine distances.

    On kept (non-degenerate) edges both edge vectors have unit norm, so
    ``||e^S - e^T||^2 = 2 - 2 <e^S, e^T>`` and ``1 - cos = 1 - <e^S, e^T>``; the inner products come from
    :func:`edge_cosines_gram`. Peak memory is O(N M + (N + M) D) instead of O(N M D).

    Args:
        x_s, y_s, x_t, y_t, keep, distance, eps: as in :func:`edge_loss_reference`; ``keep`` must exclude
            degenerate edges (:func:`nondegenerate_edge_mask`).

    Returns:
        Scalar loss, equal to the reference.
    """
    if distance not in GRAM_DISTANCES:
        raise ValueError(f'VRM: distance={distance!r} does not reduce to Gram products (only {GRAM_DISTANCES} '
                         'do); use implementation="reference" (chunked) for it')
    cos = edge_cosines_gram(x_s, y_s, x_t, y_t, eps)
    per_edge = 2 - 2 * cos if distance == 'mse' else 1 - cos
    keep = keep.to(cos.dtype)
    return (per_edge * keep).sum() / _normaliser(keep, x_s.size(1), distance)
