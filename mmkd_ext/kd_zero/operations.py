"""KD-Zero operation library (paper Table 1): transforms, distances, calibrations, weights, temperatures.

Every operation is a pure function on tensors. The paper's appendix with the formulas is missing,
so the formulas follow METHODS.md section 2.3 ([R] our resolution / [X] the public registry that uses
KD-Zero's operation names). Each transform declares the tensor ranks it accepts
(2: logits ``(B, C)`` or embeddings ``(B, D)``; 3: ``(B, C, L)``; 4: feature maps ``(B, C, H, W)``)
and the rank it returns, so a genome can be checked before any training (see ``genome.py``).

Stochastic transforms (``drop``, ``mask``) draw their random mask once and apply the *same* mask
to student and teacher ([R] METHODS.md K12), so the loss can reach zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ANY_RANK = frozenset({2, 3, 4})
SPATIAL = frozenset({3, 4})
MAPS = frozenset({4})
EPS = 1e-9
ATT_TEMPERATURE = 0.5  # [X] temperature of satt/catt/natt softmaxes
DROP_P = 0.1  # [X] channel dropout probability of `drop`
MASK_RATIO = 0.65  # [X] probability that `mask` zeroes a spatial position (MGD-style)


# ----------------------------------------------------------------------------------------------
# Transforms: x -> x'. Ranks: 2 (B, C), 3 (B, C, L), 4 (B, C, H, W).
# ----------------------------------------------------------------------------------------------
def identity(x: Tensor) -> Tensor:
    """``no``: returns ``x`` unchanged."""
    return x


def batchnorm(x: Tensor) -> Tensor:
    """``batchnorm``: non-affine per-channel standardisation over all dims but 1 ([R] K13).

    Args:
        x: (B, C, ...) with B * prod(...) > 1.

    Returns:
        Same shape, each channel zero-mean / unit-variance over the batch (and positions).
    """
    return F.batch_norm(x, None, None, training=True, momentum=0.0, eps=1e-5)


def min_max(x: Tensor) -> Tensor:
    """``min-max``: ``(x - min x) / (max x - min x + 1e-9)`` with global min/max ([X])."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo + EPS)


def _spatial_flat(x: Tensor) -> Tensor:
    """(B, C, H, W) or (B, C, L) -> (B, C, L)."""
    return x.flatten(2)


def norm_hw(x: Tensor) -> Tensor:
    """``norm_HW``: l2-normalise over the spatial positions (dims >= 2) of each channel."""
    return F.normalize(_spatial_flat(x), dim=2, eps=EPS).view_as(x)


def norm_c(x: Tensor) -> Tensor:
    """``norm_C``: l2-normalise over the channel/class dim 1."""
    return F.normalize(x, dim=1, eps=EPS)


def norm_n(x: Tensor) -> Tensor:
    """``norm_N``: l2-normalise over the batch dim 0."""
    return F.normalize(x, dim=0, eps=EPS)


def softmax_hw(x: Tensor) -> Tensor:
    """``softmax_HW``: softmax over the flattened spatial positions of each channel."""
    return F.softmax(_spatial_flat(x), dim=2).view_as(x)


def softmax_c(x: Tensor) -> Tensor:
    """``softmax_C``: softmax over dim 1."""
    return F.softmax(x, dim=1)


def softmax_n(x: Tensor) -> Tensor:
    """``softmax_N``: softmax over the batch dim 0."""
    return F.softmax(x, dim=0)


def logsoftmax_hw(x: Tensor) -> Tensor:
    """``logsoftmax_HW``: log-softmax over the flattened spatial positions of each channel."""
    return F.log_softmax(_spatial_flat(x), dim=2).view_as(x)


def logsoftmax_c(x: Tensor) -> Tensor:
    """``logsoftmax_C``: log-softmax over dim 1."""
    return F.log_softmax(x, dim=1)


def logsoftmax_n(x: Tensor) -> Tensor:
    """``logsoftmax_N``: log-softmax over dim 0 ([X] one version wrongly uses dim 1; METHODS.md 2.3)."""
    return F.log_softmax(x, dim=0)


def mish(x: Tensor) -> Tensor:
    """``mish``: ``x * tanh(softplus(x))``."""
    return x * torch.tanh(F.softplus(x))


def signed_log(x: Tensor) -> Tensor:
    """``log``: ``sign(x) * log(|x| + 1e-9)`` ([X])."""
    return torch.sign(x) * torch.log(x.abs() + EPS)


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt``: ``sqrt(clamp(x, min=0))`` ([X] second version); the gradient at 0 is kept finite."""
    return torch.sqrt(x.clamp(min=0) + EPS) - math.sqrt(EPS)


def scale_half(x: Tensor) -> Tensor:
    """``scale``: ``(x + 1) / 2``."""
    return (x + 1) / 2


def max_pool_r(x: Tensor, r: int) -> Tensor:
    """``scale_r{k}``: k x k max-pool with stride k, zero-padding H and W up to a multiple of k.

    Args:
        x: (B, C, H, W).
        r: pool size k.

    Returns:
        (B, C, ceil(H / k), ceil(W / k)).
    """
    if r == 1:
        return x
    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % r, 0, (-h) % r))
    return F.max_pool2d(x, r, r)


def multi_scale(x: Tensor) -> Tensor:
    """``multi-scale`` [R]: concatenation of the flattened r = 1, 2, 4 max-pools.

    Args:
        x: (B, C, H, W).

    Returns:
        (B, C, L) with L = HW + ceil(H/2)ceil(W/2) + ceil(H/4)ceil(W/4).
    """
    return torch.cat([max_pool_r(x, r).flatten(2) for r in (1, 2, 4)], dim=2)


def local_patches(x: Tensor, r: int) -> Tensor:
    """``local_r{r}``: ``b c (h hp) (w wp) -> b (c h w) hp wp`` with hp = wp = r ([X]).

    Each r x r patch becomes a separate "channel", so later norm/softmax ops act locally.
    H and W are zero-padded to multiples of r.

    Args:
        x: (B, C, H, W).
        r: patch size.

    Returns:
        (B, C * ceil(H/r) * ceil(W/r), r, r).
    """
    hh, ww = x.shape[-2:]
    x = F.pad(x, (0, (-ww) % r, 0, (-hh) % r))
    b, c, hh, ww = x.shape
    h, w = hh // r, ww // r
    x = x.view(b, c, h, r, w, r).permute(0, 1, 2, 4, 3, 5)
    return x.reshape(b, c * h * w, r, r)


def flatten_batch(x: Tensor) -> Tensor:
    """``batch``: flatten to (B, -1)."""
    return x.flatten(1)


def flatten_channel(x: Tensor) -> Tensor:
    """``channel``: (B, C, H, W) -> (B, C, H*W)."""
    return x.flatten(2)


def spatial_attention(x: Tensor) -> Tensor:
    """``satt`` ([X] version 2): ``x * sqrt(A_s)``, ``A_s = HW * softmax_hw(mean_c |x| / 0.5)``.

    Args:
        x: (B, C, H, W).

    Returns:
        (B, C, H, W).
    """
    b, _, h, w = x.shape
    att = (h * w) * F.softmax(x.abs().mean(dim=1).view(b, -1) / ATT_TEMPERATURE, dim=1)
    return x * att.sqrt().view(b, 1, h, w)


def channel_attention(x: Tensor) -> Tensor:
    """``catt``: ``x * sqrt(A_c)``, ``A_c = C * softmax_c(mean_hw |x| / 0.5)`` for maps.

    For (B, C) / (B, C, L) inputs it returns ``C * softmax(x / 0.5, dim=1)`` ([X]).
    """
    c = x.shape[1]
    if x.dim() != 4:
        return c * F.softmax(x / ATT_TEMPERATURE, dim=1)
    att = c * F.softmax(x.abs().mean(dim=(2, 3)) / ATT_TEMPERATURE, dim=1)
    return x * att.sqrt()[:, :, None, None]


def batch_attention(x: Tensor) -> Tensor:
    """``natt``: ``B * softmax(x / 0.5, dim=0)``."""
    return x.shape[0] * F.softmax(x / ATT_TEMPERATURE, dim=0)


def gram_bmm(x: Tensor) -> Tensor:
    """``bmm``: per-sample Gram matrix divided by the number of positions [R scaling].

    Args:
        x: (B, C, H, W) or (B, C, L).

    Returns:
        (B, C, C).
    """
    f = x.flatten(2)
    return torch.bmm(f, f.transpose(1, 2)) / f.shape[2]


def gram_mm(x: Tensor) -> Tensor:
    """``mm``: batch Gram matrix of the flattened samples divided by their length [R scaling].

    Args:
        x: (B, ...).

    Returns:
        (B, B).
    """
    f = x.flatten(1)
    return f @ f.t() / f.shape[1]


def dropout_mask(x: Tensor, p: float = DROP_P) -> Tensor:
    """Channel-wise keep mask of ``drop``, scaled by 1 / (1 - p): (B, C, 1...) (element-wise for 2-D)."""
    shape = x.shape[:2] + (1, ) * (x.dim() - 2)
    keep = (torch.rand(shape, device=x.device) >= p).to(x.dtype)
    return keep / (1 - p)


def spatial_mask(x: Tensor, ratio: float = MASK_RATIO) -> Tensor:
    """Per-sample spatial keep mask of ``mask``: (B, 1, H, W), each position zeroed w.p. ``ratio``."""
    b, _, h, w = x.shape
    return (torch.rand((b, 1, h, w), device=x.device) >= ratio).to(x.dtype)


def apply_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Multiply by a (broadcastable) mask drawn by :func:`dropout_mask` / :func:`spatial_mask`."""
    return x * mask


@dataclass(frozen=True)
class TransformOp:
    """A transform: its function, the ranks it accepts, and the rank it returns.

    ``mask_fn`` is set for stochastic ops: the mask is drawn once from the teacher tensor and
    ``fn(x, mask)`` is applied to both student and teacher.
    """
    name: str
    family: str
    fn: Callable[..., Tensor]
    accepts: FrozenSet[int]
    out_rank: Optional[int] = None  # None: same rank as the input
    mask_fn: Optional[Callable[[Tensor], Tensor]] = None

    def output_rank(self, rank: int) -> int:
        return rank if self.out_rank is None else self.out_rank


def _op(name, family, fn, accepts=ANY_RANK, out_rank=None, mask_fn=None) -> TransformOp:
    return TransformOp(name, family, fn, frozenset(accepts), out_rank, mask_fn)


TRANSFORMS: Dict[str, TransformOp] = {op.name: op for op in [
    _op('no', 'other', identity),
    # norm-based
    _op('batchnorm', 'norm', batchnorm),
    _op('min_max', 'norm', min_max),
    _op('norm_HW', 'norm', norm_hw, SPATIAL),
    _op('norm_C', 'norm', norm_c),
    _op('norm_N', 'norm', norm_n),
    _op('softmax_HW', 'norm', softmax_hw, SPATIAL),
    _op('softmax_C', 'norm', softmax_c),
    _op('softmax_N', 'norm', softmax_n),
    _op('logsoftmax_HW', 'norm', logsoftmax_hw, SPATIAL),
    _op('logsoftmax_C', 'norm', logsoftmax_c),
    _op('logsoftmax_N', 'norm', logsoftmax_n),
    # activation-based
    _op('exp', 'activation', torch.exp),
    _op('mish', 'activation', mish),
    _op('leaky', 'activation', F.leaky_relu),  # slope 0.01
    _op('relu', 'activation', F.relu),
    _op('tanh', 'activation', torch.tanh),
    _op('sigmoid', 'activation', torch.sigmoid),
    _op('pow2', 'activation', lambda x: x.pow(2)),
    _op('pow4', 'activation', lambda x: x.pow(4)),
    _op('log', 'activation', signed_log),
    _op('sqrt', 'activation', safe_sqrt),
    # scale-based
    _op('scale', 'scale', scale_half),
    _op('multi_scale', 'scale', multi_scale, MAPS, out_rank=3),
    _op('scale_r1', 'scale', lambda x: max_pool_r(x, 1), MAPS),
    _op('scale_r2', 'scale', lambda x: max_pool_r(x, 2), MAPS),
    _op('local_r1', 'scale', lambda x: local_patches(x, 1), MAPS),
    _op('local_r2', 'scale', lambda x: local_patches(x, 2), MAPS),
    _op('local_r4', 'scale', lambda x: local_patches(x, 4), MAPS),
    _op('batch', 'scale', flatten_batch, out_rank=2),
    _op('channel', 'scale', flatten_channel, SPATIAL, out_rank=3),
    # attention & mask-based
    _op('drop', 'attention', apply_mask, mask_fn=dropout_mask),
    _op('satt', 'attention', spatial_attention, MAPS),
    _op('catt', 'attention', channel_attention),
    _op('natt', 'attention', batch_attention),
    _op('mask', 'attention', apply_mask, MAPS, mask_fn=spatial_mask),
    # other
    _op('bmm', 'other', gram_bmm, SPATIAL, out_rank=3),
    _op('mm', 'other', gram_mm, out_rank=2),
]}

ACTIVATIONS = ('exp', 'mish', 'leaky', 'relu', 'tanh', 'sigmoid', 'pow2', 'pow4', 'log', 'sqrt')
# Slot typing ([R] following [X], METHODS.md 2.3): attention -> scale (+activations, gram) -> norm.
SLOT_OPTIONS: Dict[str, tuple] = {
    't1': ('no', 'satt', 'natt', 'catt', 'mask', 'drop'),
    't2': ('no', 'scale', 'multi_scale', 'scale_r1', 'scale_r2', 'local_r1', 'local_r2', 'local_r4') + ACTIVATIONS
    + ('bmm', 'mm'),
    't3': ('no', 'batch', 'channel', 'batchnorm', 'min_max', 'norm_HW', 'norm_C', 'norm_N', 'softmax_HW', 'softmax_C',
           'softmax_N', 'logsoftmax_HW', 'logsoftmax_C', 'logsoftmax_N'),
}


def transform_pair(name: str, student: Tensor, teacher: Tensor) -> tuple:
    """Apply transform ``name`` to student and teacher (one shared mask for stochastic ops).

    Args:
        name: a key of :data:`TRANSFORMS`.
        student: student tensor, same shape as ``teacher``.
        teacher: teacher tensor.

    Returns:
        (student', teacher').
    """
    op = TRANSFORMS[name]
    if op.mask_fn is None:
        return op.fn(student), op.fn(teacher)
    mask = op.mask_fn(teacher)
    return op.fn(student, mask), op.fn(teacher, mask)


# ----------------------------------------------------------------------------------------------
# Distances D(a, b) with per-sample weights w (B,), mean_n w_n = 1. a: student, b: teacher.
# ----------------------------------------------------------------------------------------------
def _weighted_mean(per_sample: Tensor, weights: Tensor) -> Tensor:
    return (per_sample * weights).mean()


def l1_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``l1``: mean absolute error (per sample, then weighted mean over the batch)."""
    return _weighted_mean((a - b).abs().flatten(1).mean(1), weights)


def l2_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``l2``: mean squared error (per sample, then weighted mean)."""
    return _weighted_mean((a - b).pow(2).flatten(1).mean(1), weights)


def smooth_l1_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``smooth_l1`` (beta = 1), mean over elements per sample, then weighted mean."""
    per_elem = F.smooth_l1_loss(a, b, reduction='none', beta=1.0)
    return _weighted_mean(per_elem.flatten(1).mean(1), weights)


def kl_distance(a: Tensor, b: Tensor, weights: Tensor, space: str = 'raw') -> Tensor:
    """``kl`` [R]: ``KL(b || a)`` with batchmean reduction.

    Args:
        a: student tensor (B, ...).
        b: teacher tensor, same shape.
        weights: (B,) per-sample weights.
        space: ``'prob'`` (a, b are probabilities after a softmax_* transform), ``'logprob'`` (after
            logsoftmax_*), or ``'raw'`` (softmax over the flattened non-batch dims is applied here).

    Returns:
        Scalar: weighted mean over samples of ``sum b (log b - log a)``.
    """
    if space == 'prob':
        log_a, log_b = a.clamp_min(EPS).log(), b.clamp_min(EPS).log()
    elif space == 'logprob':
        log_a, log_b = a, b
    elif space == 'raw':
        log_a, log_b = F.log_softmax(a.flatten(1), dim=1), F.log_softmax(b.flatten(1), dim=1)
    else:
        raise ValueError(f"kl_distance: space must be 'prob', 'logprob' or 'raw', got {space!r}")
    per_sample = (log_b.exp() * (log_b - log_a)).flatten(1).sum(1)
    return _weighted_mean(per_sample, weights)


def hard_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``hard`` [R]: ``CE(a, argmax_dim1 b)``, DeiT-style; positions of maps are averaged per sample."""
    target = b.argmax(dim=1)
    per_pos = F.cross_entropy(a, target, reduction='none')
    return _weighted_mean(per_pos.flatten(1).mean(1) if per_pos.dim() > 1 else per_pos, weights)


def cosine_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``cosine``: ``1 - cos(a_n, b_n)`` per sample on the flattened vectors ([X] returns +cos: a bug)."""
    return _weighted_mean(1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1, eps=EPS), weights)


def pearson_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``pearson``: ``1 - pearson(a_n, b_n)`` per sample (row-centred cosine, as DIST)."""
    a, b = a.flatten(1), b.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return _weighted_mean(1 - F.cosine_similarity(a, b, dim=1, eps=EPS), weights)


def correlation_distance(a: Tensor, b: Tensor, weights: Tensor) -> Tensor:
    """``correlation`` ([X]): ``log2 sum_x (|c_x - 1|^2)^1.01``, ``c_x`` the batch correlation of column x.

    Columns are batch-standardised; ``c_x = sum_n w_n a^_nx b^_nx / sum_n w_n`` ([R]: the per-sample
    calibration weights enter the batch average).

    Args:
        a: (B, ...) with B >= 2.
        b: same shape.
        weights: (B,).

    Returns:
        Scalar.
    """
    if a.shape[0] < 2:
        raise ValueError('correlation distance needs a batch of at least 2 samples (it standardises over the batch)')
    a, b = a.flatten(1), b.flatten(1)
    a = (a - a.mean(0)) / (a.std(0) + 1e-6)
    b = (b - b.mean(0)) / (b.std(0) + 1e-6)
    c = (weights[:, None] * a * b).sum(0) / weights.sum()
    return torch.log2(((c - 1).pow(2)).pow(1.01).sum() + EPS)


DISTANCES: Dict[str, Callable[..., Tensor]] = {
    'smooth_l1': smooth_l1_distance,
    'l1': l1_distance,
    'l2': l2_distance,
    'kl': kl_distance,
    'hard': hard_distance,
    'cosine': cosine_distance,
    'pearson': pearson_distance,
    'correlation': correlation_distance,
}


def kl_space(last_transform: str) -> str:
    """How ``kl`` reads its inputs given transform-3 ([R] METHODS.md 2.3)."""
    if last_transform.startswith('softmax_'):
        return 'prob'
    if last_transform.startswith('logsoftmax_'):
        return 'logprob'
    return 'raw'


# ----------------------------------------------------------------------------------------------
# Calibrations W_Cal: per-sample weights from detached logits (B, C) and labels (B,) [R].
# ----------------------------------------------------------------------------------------------
def calib_none(logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """``no``: w_n = 1."""
    return torch.ones(logits_s.shape[0], device=logits_s.device, dtype=logits_s.dtype)


def calib_entropy(logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """``entropy``: ``w_n = H(p_T,n) / log C`` (normalised teacher entropy)."""
    log_p = F.log_softmax(logits_t, dim=1)
    return -(log_p.exp() * log_p).sum(1) / math.log(logits_t.shape[1])


def calib_focal(logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """``focal`` (WSLD [79]): ``w_n = 1 - exp(-CE(z_S,n, y_n) / CE(z_T,n, y_n))``."""
    _need_labels('focal', labels)
    ce_s = F.cross_entropy(logits_s, labels, reduction='none')
    ce_t = F.cross_entropy(logits_t, labels, reduction='none')
    return 1 - torch.exp(-ce_s / (ce_t + 1e-7))


def calib_sim(logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """``sim``: ``w_n = 1 - cos(p_S,n, p_T,n)`` (emphasise disagreement)."""
    return 1 - F.cosine_similarity(F.softmax(logits_s, 1), F.softmax(logits_t, 1), dim=1)


def calib_conf(logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None) -> Tensor:
    """``conf``: ``w_n = p_T,n[y_n]`` (teacher confidence on the true class)."""
    _need_labels('conf', labels)
    return F.softmax(logits_t, 1).gather(1, labels.long().view(-1, 1)).squeeze(1)


def _need_labels(name: str, labels: Optional[Tensor]) -> None:
    if labels is None:
        raise ValueError(f"calibration {name!r} needs ground-truth labels: map 'gt_labels' of KDZeroLoss to a "
                         "recorder of the student's labels (e.g. ModuleInputs on 'head.loss_module', data_idx=1)")


CALIBRATIONS: Dict[str, Callable[..., Tensor]] = {
    'no': calib_none,
    'entropy': calib_entropy,
    'focal': calib_focal,
    'sim': calib_sim,
    'conf': calib_conf,
}
NEEDS_LABELS = ('focal', 'conf')


def calibration_weights(name: str, logits_s: Tensor, logits_t: Tensor, labels: Optional[Tensor] = None,
                        normalize: bool = True) -> Tensor:
    """Per-sample calibration weights ``W_Cal`` (Eq. 1), computed without gradient.

    Args:
        name: a key of :data:`CALIBRATIONS`.
        logits_s: (B, C) student logits.
        logits_t: (B, C) teacher logits.
        labels: (B,) class indices (``focal``/``conf`` only).
        normalize: rescale so that ``mean_n w_n = 1`` ([R], config ``normalize_calibration``).

    Returns:
        (B,) non-negative weights.
    """
    with torch.no_grad():
        w = CALIBRATIONS[name](logits_s.detach().float(), logits_t.detach().float(), labels)
        if normalize:
            mean = w.mean()  # a branch on its value would wait for the GPU every step: torch.where does not
            w = torch.where(mean > 1e-12, w / mean.clamp_min(1e-12), torch.ones_like(w))
    return w


# Loss-weight and temperature grids (Eq. 1). W_f: [P] endpoints 0.01..100, [R] grid dense in [1, 10].
WEIGHT_VALUES: Sequence[float] = (0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
TEMPERATURES: Sequence[float] = (1.0, 4.0, 8.0)  # [P]
KNOWLEDGE_RANKS: Dict[str, int] = {'feature': 4, 'embedding': 2, 'logits': 2}  # [R] METHODS.md 2.3
