"""Importance scores of AMD (supp. Eq. 3): ``S = E_{x~D} |dL(x) / d mask|``.

[R] (METHODS.md §1.3): L is the task loss (cross-entropy) of the fine-tuned teacher; the expectation
is the mean over the given batches, in ``train()`` mode; ``granularity='sample'`` takes |.| of every
example's gradient (the expectation of an absolute value), ``'batch'`` the cheaper |.| of each
mini-batch mean gradient.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor, nn

from .pruning import MaskSet

LossFn = Callable[[object], Tensor]  # batch -> (B,) per-example losses


def estimate_importance(masks: MaskSet, batches: Iterable, loss_fn: LossFn, granularity: str = 'sample',
                        max_samples: Optional[int] = None) -> Dict[str, Tensor]:
    """Mean absolute gradient of the loss w.r.t. every mask entry (supp. Eq. 3).

    Args:
        masks: the model's masks (set to 1; gradients are taken w.r.t. them).
        batches: iterable of batches for ``loss_fn``.
        loss_fn: ``batch -> (B,)`` per-example losses of the masked model.
        granularity: ``'sample'`` (|per-example gradient|, [R] preferred) or ``'batch'`` (|mini-batch gradient|).
        max_samples: stop after this many examples (None: all batches); under ``torchrun`` the total over all
            ranks (each rank takes its share of its own data shard).

    Returns:
        ``{unit name: (num_masks,) scores}``; under ``torchrun`` the mean over every rank's examples (sums and
        counts all-reduced), so all ranks rank the structures alike.
    """
    if granularity not in ('sample', 'batch'):
        raise ValueError(f"importance granularity must be 'sample' or 'batch', got {granularity!r}")
    world = get_world_size()
    if max_samples is not None:
        max_samples = -(-max_samples // world)  # ceil: this rank's share
    masks.reset()
    masks.requires_grad(True)
    names = list(masks.masks)
    acc = {n: torch.zeros_like(masks.masks[n]).detach() for n in names}
    count, seen = 0, 0
    try:
        for batch in batches:
            losses = loss_fn(batch)
            if losses.dim() != 1:
                raise ValueError(f'loss_fn must return per-example losses (B,), got shape {tuple(losses.shape)}')
            targets = list(losses) if granularity == 'sample' else [losses.mean()]
            for i, loss in enumerate(targets):
                grads = torch.autograd.grad(loss, [masks.masks[n] for n in names],
                                            retain_graph=i < len(targets) - 1, allow_unused=True)
                for n, g in zip(names, grads):
                    if g is not None:
                        acc[n] += g.detach().abs()
                count += 1
            seen += losses.numel()
            if max_samples is not None and seen >= max_samples:
                break
    finally:
        masks.requires_grad(False)
    if world > 1:
        count = _all_reduce_sums(acc, count)
    if count == 0:
        raise ValueError('importance estimation got no batches; check the importance dataloader')
    return {n: v / count for n, v in acc.items()}


def _all_reduce_sums(acc: Dict[str, Tensor], count: int) -> int:
    """Sum the per-rank gradient sums in place and return the total count of gradient targets."""
    for value in acc.values():
        all_reduce(value, op='sum')
    total = torch.tensor([float(count)], dtype=torch.float64)
    all_reduce(total, op='sum')
    return int(total.item())


def task_loss_per_sample(model: nn.Module, data: dict, ignore_index: int = 255) -> Tensor:
    """Per-example task loss of an mmpretrain classifier or mmseg segmentor ([R] L = CE, METHODS.md §1.3).

    Args:
        model: ``ImageClassifier`` / ``EncoderDecoder`` (called with ``mode='tensor'``).
        data: a *preprocessed* batch ``{'inputs': (B, 3, H, W), 'data_samples': [...]}``.
        ignore_index: ignored label of segmentation maps.

    Returns:
        (B,) cross-entropy per example (pixel-mean for segmentation).
    """
    logits = model(data['inputs'], mode='tensor')
    samples = data['data_samples']
    if hasattr(samples[0], 'gt_label'):
        labels = torch.cat([s.gt_label.reshape(-1)[:1] for s in samples]).to(logits.device)
        return F.cross_entropy(logits, labels, reduction='none')
    if hasattr(samples[0], 'gt_sem_seg'):
        seg = torch.stack([s.gt_sem_seg.data.squeeze(0) for s in samples]).long().to(logits.device)
        logits = F.interpolate(logits, size=seg.shape[-2:], mode='bilinear', align_corners=False)
        pix = F.cross_entropy(logits, seg, ignore_index=ignore_index, reduction='none')
        valid = (seg != ignore_index).flatten(1).sum(1).clamp_min(1)
        return pix.flatten(1).sum(1) / valid
    raise TypeError('task_loss_per_sample supports classification (gt_label) and segmentation (gt_sem_seg) samples, '
                    f'got {type(samples[0]).__name__}')
