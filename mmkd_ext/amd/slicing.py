"""AMD candidates at their own cost: weights sliced to the kept structures (issue 14; option
``pruner.candidate_mode='sliced'``).

The masked form (:class:`~mmkd_ext.amd.pruning.MaskSet`) runs every candidate as the full-size network whose pruned
structures are multiplied by 0, so a joint step costs m full forwards and backwards. Here each candidate runs with
its producers' weights sliced to the kept output channels / neurons and its consumers' weights sliced to the kept
inputs (``index_select`` on the shared parameters: the gradient flows back into the full tensors), so a candidate
at 30% of the FLOPs costs about 30%.

Both forms compute the same function: in the masked form a pruned channel's producer output is multiplied by 0
before the consumer, which is what leaving it out does; BatchNorm normalises each channel on its own, so the kept
channels' statistics are the same. The loss and every gradient are therefore equal (the pruned weights get a zero
gradient in both), see ``tests/amd/test_slicing.py``. The one difference: the sliced form updates the running
statistics of the kept channels only (the pruned ones are never used by that candidate).

Supported: ``'channel'`` units (convs + BN of CNNs) and per-neuron ``'neuron'`` units (FFN linears). Attention heads
and layer-granularity FFN masks stay masked (their modules would need a head count that changes per candidate).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .pruning import PrunableUnit


def sliceable(unit: PrunableUnit) -> bool:
    """Whether ``unit`` can run sliced (channel units, per-neuron FFN units)."""
    return unit.kind in ('channel', 'neuron')


def _select(t: Optional[Tensor], index: Optional[Tensor], dim: int) -> Optional[Tensor]:
    return t if t is None or index is None else t.index_select(dim, index)


def sliced_conv(conv: nn.Conv2d, out_idx: Optional[Tensor], in_idx: Optional[Tensor]):
    """``forward`` of ``conv`` with its filters ``out_idx`` and input channels ``in_idx`` only."""
    def forward(x: Tensor) -> Tensor:
        weight = _select(_select(conv.weight, out_idx, 0), in_idx, 1)
        return conv._conv_forward(x, weight, _select(conv.bias, out_idx, 0))
    return forward


def sliced_linear(linear: nn.Linear, out_idx: Optional[Tensor], in_idx: Optional[Tensor]):
    """``forward`` of ``linear`` with its output rows ``out_idx`` and input columns ``in_idx`` only."""
    def forward(x: Tensor) -> Tensor:
        weight = _select(_select(linear.weight, out_idx, 0), in_idx, 1)
        return F.linear(x, weight, _select(linear.bias, out_idx, 0))
    return forward


def sliced_batch_norm(bn: _BatchNorm, idx: Tensor):
    """``forward`` of ``bn`` on the channels ``idx``: affine parameters sliced, running statistics of those
    channels updated in place (``torch.nn.BatchNorm2d`` semantics, momentum or cumulative average)."""
    if isinstance(bn, nn.SyncBatchNorm):
        raise NotImplementedError("candidate_mode='sliced' does not synchronise sliced BatchNorm statistics; "
                                  "use candidate_mode='masked' with SyncBN")

    def forward(x: Tensor) -> Tensor:
        weight, bias = _select(bn.weight, idx, 0), _select(bn.bias, idx, 0)
        if not bn.track_running_stats:
            return F.batch_norm(x, None, None, weight, bias, True, 0.0, bn.eps)
        mean, var = bn.running_mean.index_select(0, idx), bn.running_var.index_select(0, idx)
        if not bn.training:
            return F.batch_norm(x, mean, var, weight, bias, False, 0.0, bn.eps)
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        out = F.batch_norm(x, mean, var, weight, bias, True, factor, bn.eps)  # updates mean/var (copies)
        with torch.no_grad():
            bn.running_mean.index_copy_(0, idx, mean)
            bn.running_var.index_copy_(0, idx, var)
        return out
    return forward


def _sliced_forward(module: nn.Module, out_idx: Optional[Tensor], in_idx: Optional[Tensor]):
    if isinstance(module, _BatchNorm):
        return sliced_batch_norm(module, out_idx)
    if isinstance(module, nn.Conv2d):
        return sliced_conv(module, out_idx, in_idx)
    if isinstance(module, nn.Linear):
        return sliced_linear(module, out_idx, in_idx)
    raise NotImplementedError(f'cannot slice a {type(module).__name__}; use candidate_mode=\'masked\'')


class SlicedCandidates:
    """Run the candidate of given keep vectors with sliced weights (instance ``forward`` overrides).

    Args:
        model: the model the units were found in.
        units: its prunable units; the :func:`sliceable` ones run sliced.
    """

    def __init__(self, model: nn.Module, units: Sequence[PrunableUnit]) -> None:
        self.units: List[PrunableUnit] = [u for u in units if sliceable(u)]
        self.names = {u.name for u in self.units}
        self._model = model  # modules are looked up by name at every apply (SyncBN conversion replaces BNs)
        self._patched: List[nn.Module] = []

    def apply(self, keep: Optional[Dict[str, Tensor]]) -> None:
        """Slice every sliceable unit to ``keep`` (``{unit name: (size,) bool}``); None: the full model."""
        self.restore()
        if keep is None:
            return
        modules = dict(self._model.named_modules())
        out_idx: Dict[str, Tensor] = {}
        in_idx: Dict[str, Tensor] = {}
        for unit in self.units:
            k = keep[unit.name]
            if bool(k.all()):
                continue
            module = modules[unit.consumer]
            idx = torch.nonzero(k, as_tuple=False).flatten().to(next(module.parameters()).device)
            for name, _ in unit.producers:
                out_idx[name] = idx
            in_idx[unit.consumer] = idx
        for name in sorted(set(out_idx) | set(in_idx)):
            module = modules[name]
            module.forward = _sliced_forward(module, out_idx.get(name), in_idx.get(name))
            self._patched.append(module)

    def restore(self) -> None:
        """Back to the modules' own ``forward``."""
        for module in self._patched:
            del module.forward
        self._patched = []
