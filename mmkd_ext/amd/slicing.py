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

Device placement (issue 23): the kept indices are non-persistent buffers of a :class:`SlicedCandidates` module
registered in the pruned model (``amd_slicer``), so ``model.to(...)``, MMEngine's device placement and DDP's
buffer broadcast move them with the weights; the sliced modules are looked up by name, and a forward pre-hook of
the model re-installs the sliced ``forward`` on modules that were replaced after :meth:`SlicedCandidates.set_keep`
(SyncBN conversion of a teacher pruned in ``AMDDistill.__init__``). Nothing is held in closures; a deep copy (EMA)
slices its own modules.

Supported: ``'channel'`` units (convs + BN of CNNs) and per-neuron ``'neuron'`` units (FFN linears). Attention heads
and layer-granularity FFN masks stay masked (their modules would need a head count that changes per candidate).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

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


def sliced_conv(conv: nn.Conv2d, x: Tensor, out_idx: Optional[Tensor], in_idx: Optional[Tensor]) -> Tensor:
    """``conv(x)`` with its filters ``out_idx`` and input channels ``in_idx`` only (None: all)."""
    weight = _select(_select(conv.weight, out_idx, 0), in_idx, 1)
    return conv._conv_forward(x, weight, _select(conv.bias, out_idx, 0))


def sliced_linear(linear: nn.Linear, x: Tensor, out_idx: Optional[Tensor], in_idx: Optional[Tensor]) -> Tensor:
    """``linear(x)`` with its output rows ``out_idx`` and input columns ``in_idx`` only (None: all)."""
    weight = _select(_select(linear.weight, out_idx, 0), in_idx, 1)
    return F.linear(x, weight, _select(linear.bias, out_idx, 0))


def sliced_batch_norm(bn: _BatchNorm, x: Tensor, idx: Tensor) -> Tensor:
    """``bn(x)`` on the channels ``idx``: affine parameters sliced, running statistics of those channels updated in
    place in training (``torch.nn.BatchNorm2d`` semantics, momentum or cumulative average).

    Raises:
        NotImplementedError: a training ``SyncBatchNorm`` (its statistics would not be synchronised); in eval mode
            (a frozen pruned teacher) it normalises with its running statistics like any BN.
    """
    if bn.training and isinstance(bn, nn.SyncBatchNorm):
        raise NotImplementedError("candidate_mode='sliced' does not synchronise sliced BatchNorm statistics; "
                                  "use candidate_mode='masked' with SyncBN")
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


def _check_sliceable(module: nn.Module, name: str) -> None:
    if not isinstance(module, (_BatchNorm, nn.Conv2d, nn.Linear)):
        raise NotImplementedError(f"cannot slice {name!r} (a {type(module).__name__}); use "
                                  "pruner.candidate_mode='masked'")


class SlicedForward:
    """The instance ``forward`` of one sliced module: its kept structures, read from the slicer's buffers per call.

    Args:
        module: the conv / linear / BN it replaces the ``forward`` of.
        slicer: the :class:`SlicedCandidates` holding the index buffers.
        out_unit: index of the unit whose structures this module produces (None: all outputs).
        in_unit: index of the unit whose structures this module consumes (None: all inputs).
    """

    def __init__(self, module: nn.Module, slicer: 'SlicedCandidates', out_unit: Optional[int],
                 in_unit: Optional[int]) -> None:
        self.module, self.slicer, self.out_unit, self.in_unit = module, slicer, out_unit, in_unit

    def __call__(self, x: Tensor) -> Tensor:
        out_idx, in_idx = self.slicer.index(self.out_unit), self.slicer.index(self.in_unit)
        if isinstance(self.module, _BatchNorm):  # patched only while its unit is sliced: out_idx is set
            return sliced_batch_norm(self.module, x, out_idx)
        if isinstance(self.module, nn.Conv2d):
            return sliced_conv(self.module, x, out_idx, in_idx)
        return sliced_linear(self.module, x, out_idx, in_idx)


class SlicedCandidates(nn.Module):
    """Run the candidate of given keep vectors with sliced weights (instance ``forward`` overrides).

    Registered in ``model`` as ``amd_slicer``. Per sliceable unit a non-persistent buffer ``order_<i>`` holds the
    unit's structures, kept ones first (ascending), and :attr:`kept` how many are kept: the sliced modules select
    ``order_<i>[:kept]`` on the device the model is on. The buffers are not in the state dict (checkpoints and resume
    are unchanged); :meth:`set_keep` puts a new tensor in their place on the same device (the indices saved by a
    candidate's graph still alive, as in :meth:`AMDDistill.loss`, stay valid; the values are the same on every rank,
    so DDP's broadcast of the previous tensors changes nothing).

    Args:
        model: the model the units were found in.
        units: its prunable units; the :func:`sliceable` ones run sliced.

    Raises:
        RuntimeError: ``model`` already holds a slicer (another sliced :class:`~mmkd_ext.amd.pruner.AMDPruner`).
        NotImplementedError: a sliceable unit's producer or consumer is not a conv, linear or BN.
    """

    ATTR = 'amd_slicer'

    def __init__(self, model: nn.Module, units: Sequence[PrunableUnit]) -> None:
        super().__init__()
        if self.ATTR in model._modules:
            raise RuntimeError(f'{type(model).__name__} already holds an AMD slicer ({self.ATTR}); call '
                               'remove() on it (AMDPruner.slicer) before building another sliced AMDPruner')
        self.units: List[PrunableUnit] = [u for u in units if sliceable(u)]
        self.names = {u.name for u in self.units}
        self.kept: List[int] = [u.size for u in self.units]
        self.roles: Dict[str, Tuple[Optional[int], Optional[int]]] = {}  # module name -> (out unit, in unit)
        modules = dict(model.named_modules())
        device = next(model.parameters()).device
        for i, unit in enumerate(self.units):
            self.register_buffer(f'order_{i}', torch.arange(unit.size, device=device), persistent=False)
            for name, _ in unit.producers:
                self.roles[name] = (i, self.roles.get(name, (None, None))[1])
            self.roles[unit.consumer] = (self.roles.get(unit.consumer, (None, None))[0], i)
        for name in self.roles:
            _check_sliceable(modules[name], name)
        self.__dict__['_root'] = model  # not a submodule: the model holds the slicer, not the other way round
        self._patched: List[nn.Module] = []
        model.add_module(self.ATTR, self)
        self._hook = model.register_forward_pre_hook(self._reinstall)

    def _partial(self, unit: Optional[int]) -> bool:
        return unit is not None and self.kept[unit] < self.units[unit].size

    def index(self, unit: Optional[int]) -> Optional[Tensor]:
        """The kept structures of unit ``unit`` on the model's device (None: the unit is whole or not given)."""
        return getattr(self, f'order_{unit}')[:self.kept[unit]] if self._partial(unit) else None

    @torch.no_grad()
    def set_keep(self, keep: Optional[Dict[str, Tensor]]) -> None:
        """Slice every sliceable unit to ``keep`` (``{unit name: (size,) bool}``); None: the full model."""
        self.restore()
        if keep is None:
            return
        for i, unit in enumerate(self.units):
            k = keep[unit.name].detach().cpu().bool()
            order = torch.cat([torch.nonzero(k).flatten(), torch.nonzero(~k).flatten()])
            name = f'order_{i}'
            self._buffers[name] = order.to(getattr(self, name).device)  # a new tensor: see the class docstring
            self.kept[i] = int(k.sum())
        self._install()

    def _active(self) -> List[str]:
        return [name for name, (o, i) in self.roles.items() if self._partial(o) or self._partial(i)]

    def _install(self) -> None:
        self._patched = []
        for name in self._active():
            module = self._root.get_submodule(name)
            if not isinstance(vars(module).get('forward'), SlicedForward):
                _check_sliceable(module, name)
                module.forward = SlicedForward(module, self, *self.roles[name])
            self._patched.append(module)

    def _reinstall(self, model: nn.Module, args) -> None:
        """Forward pre-hook of the model: slice modules that replaced sliced ones (SyncBN conversion)."""
        if any(model.get_submodule(name) is not module for name, module in zip(self._active(), self._patched)):
            self._install()

    def restore(self) -> None:
        """Back to the modules' own ``forward`` (the full model)."""
        for name in self.roles:
            module = self._root.get_submodule(name)
            if isinstance(vars(module).get('forward'), SlicedForward):
                del module.forward
        self.kept = [u.size for u in self.units]
        self._patched = []

    def remove(self) -> None:
        """Restore the full model and take the slicer and its hook out of it."""
        self.restore()
        self._hook.remove()
        self._root._modules.pop(self.ATTR, None)
