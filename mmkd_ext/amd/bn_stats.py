"""Private BatchNorm statistics per candidate of a weight-shared CNN ([R] ours; not in the supplement).

Sub-networks of different widths see different activation statistics, so one set of BN running
statistics shared by all candidates is wrong for every one of them at evaluation time (the
slimmable-network problem, Yu et al. 2019). The supplement is silent because ViT uses LayerNorm; for
the CNN pairs (Table 7) and DeepLabV3 (Table 8) we keep the affine BN weights shared and swap in
per-candidate running statistics whenever the candidate changes. Training then accumulates each
candidate's own statistics, and the bank is saved with the checkpoint.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

STATS = ('running_mean', 'running_var', 'num_batches_tracked')


def batch_norms(model: nn.Module) -> List[Tuple[str, _BatchNorm]]:
    """Every BatchNorm of ``model`` that tracks running statistics."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


class BNStatBank(nn.Module):
    """Running statistics of every BN layer, one copy per candidate scale (buffers, saved in checkpoints).

    The bank remembers the BN layers by *name* and looks them up in the model at every use, so it keeps
    working when MMEngine replaces the BN modules (``convert_sync_batchnorm`` for DDP,
    ``revert_sync_batchnorm`` on one device) after the algorithm was built.

    Args:
        model: the weight-shared network.
        scales: candidate scales; each copy starts as the model's current statistics.
    """

    def __init__(self, model: nn.Module, scales: Sequence[float]) -> None:
        super().__init__()
        self.bn_names: List[str] = [name for name, _ in batch_norms(model)]
        self.scales = [float(s) for s in scales]
        self.current: Optional[float] = None
        for i, _ in enumerate(self.scales):
            for j, (_, bn) in enumerate(batch_norms(model)):
                for stat in STATS:
                    self.register_buffer(f's{i}_{j}_{stat}', getattr(bn, stat).detach().clone())

    def __len__(self) -> int:
        return len(self.bn_names)

    def _live(self, model: nn.Module) -> List[_BatchNorm]:
        """The BN modules of ``model`` under the recorded names (whatever their class is now)."""
        modules = dict(model.named_modules())
        missing = [n for n in self.bn_names if not isinstance(modules.get(n), _BatchNorm)]
        if missing:
            raise KeyError(f'BN statistics bank: {missing[:3]} are no longer BatchNorm layers of '
                           f'{type(model).__name__}; the bank was built for another model')
        return [modules[n] for n in self.bn_names]

    def _index(self, scale: float) -> int:
        for i, s in enumerate(self.scales):
            if abs(s - scale) < 1e-6:
                return i
        raise KeyError(f'scale {scale} has no BN statistics; known candidates: {self.scales}')

    def switch(self, model: nn.Module, scale: Optional[float]) -> None:
        """Store the live statistics of ``model`` under the current candidate and load those of ``scale``."""
        if scale is not None and self.current is not None and abs(scale - self.current) < 1e-9:
            return
        if self.current is not None:
            self._copy(model, self._index(self.current), to_bank=True)
        if scale is not None:
            self._copy(model, self._index(scale), to_bank=False)
        self.current = scale

    @torch.no_grad()
    def _copy(self, model: nn.Module, i: int, to_bank: bool) -> None:
        for j, bn in enumerate(self._live(model)):
            for stat in STATS:
                stored, live = getattr(self, f's{i}_{j}_{stat}'), getattr(bn, stat)
                (stored if to_bank else live).copy_(live if to_bank else stored)

    def export(self, model: nn.Module) -> Dict[str, Dict[str, Dict[str, Tensor]]]:
        """``{scale as str: {bn name: {stat: tensor}}}`` with the live statistics of ``model`` stored first."""
        if self.current is not None:
            self._copy(model, self._index(self.current), to_bank=True)
        return {repr(s): {name: {stat: getattr(self, f's{i}_{j}_{stat}').clone() for stat in STATS}
                          for j, name in enumerate(self.bn_names)}
                for i, s in enumerate(self.scales)}

    @torch.no_grad()
    def load(self, model: nn.Module, stats: Dict[str, Dict[str, Dict[str, Tensor]]]) -> None:
        """Fill the copies of the scales present in ``stats`` (an :meth:`export` dict)."""
        for i, s in enumerate(self.scales):
            entry = lookup_scale(stats, s)
            if entry is None:
                continue
            for j, name in enumerate(self.bn_names):
                for stat in STATS:
                    getattr(self, f's{i}_{j}_{stat}').copy_(entry[name][stat])
        if self.current is not None:
            self._copy(model, self._index(self.current), to_bank=False)


def lookup_scale(stats: Dict[str, dict], scale: float) -> Optional[dict]:
    """The entry of ``stats`` (keys are scales as strings) for ``scale``, or None."""
    for key, value in stats.items():
        if abs(float(key) - scale) < 1e-6:
            return value
    return None


def load_bn_stats(model: nn.Module, stats: Dict[str, dict], scale: float) -> bool:
    """Copy the statistics of candidate ``scale`` into ``model``'s BN layers; False when there are none."""
    entry = lookup_scale(stats, scale)
    if entry is None:
        return False
    with torch.no_grad():
        for name, bn in batch_norms(model):
            for stat in STATS:
                getattr(bn, stat).copy_(entry[name][stat])
    return True
