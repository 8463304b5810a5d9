"""``AMDDistributedDataParallel``: DDP that keeps AMD's per-candidate backward (supp. Algorithm 1).

MMEngine's ``MMDistributedDataParallel.train_step`` calls ``module.loss()`` and one ``update_params``:
for :class:`~mmkd_ext.amd.algorithm.AMDDistill` that keeps the autograd graphs of all m candidates alive
until one backward (m times the activation memory). This wrapper hands the step to
:meth:`AMDDistill.train_step`, which runs every candidate's forward *through the wrapper* (so DDP's
reducer sees it) and frees each candidate's graph with its own backward. DDP allows one backward per
synchronised forward, so all candidates but the last run under :meth:`no_sync` (gradients accumulate
locally) and the last one's backward all-reduces the accumulated gradient once: the update equals the
single-process step on the union of the ranks' batches (exactly so for models without BatchNorm).

Config (the AMD configs set it; ``tools/dist_train.sh`` / ``tools/amd/run.py --launcher pytorch``)::

    model_wrapper_cfg = dict(type='AMDDistributedDataParallel', broadcast_buffers=True)

[R] ``broadcast_buffers=True``: DDP broadcasts rank 0's buffers (BN statistics, the per-candidate BN bank) at a
synchronised forward only, i.e. before the first candidate of a step; the other candidates run under ``no_sync``
and update their statistics per rank. :class:`~mmkd_ext.amd.loops.AMDCandidatesValLoop` therefore broadcasts rank
0's buffers before validating, so all ranks validate (and rank 0 checkpoints) the same statistics.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Dict, Union

from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS
from torch import Tensor


@MODEL_WRAPPERS.register_module()
class AMDDistributedDataParallel(MMDistributedDataParallel):
    """DDP for :class:`~mmkd_ext.amd.algorithm.AMDDistill`: the algorithm's own step, one backward per candidate.

    Args:
        module: the AMDDistill model.
        broadcast_buffers: broadcast rank 0's buffers at every forward ([R] True, see the module docstring).
        **kwargs: further ``DistributedDataParallel`` arguments (``device_ids``, ``find_unused_parameters``).
    """

    def __init__(self, module, broadcast_buffers: bool = True, **kwargs) -> None:
        if not hasattr(module, 'candidate_step'):
            raise TypeError(f'AMDDistributedDataParallel wraps AMDDistill, not {type(module).__name__}; '
                            "use model_wrapper_cfg=dict(type='MMDistributedDataParallel') for other models")
        super().__init__(module=module, broadcast_buffers=broadcast_buffers, **kwargs)

    def train_step(self, data: Union[dict, tuple, list], optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """supp. Algorithm 1 step of the wrapped AMDDistill with synchronised gradients."""
        return self.module.train_step(data, optim_wrapper, wrapper=self)

    def candidate_sync(self, last: bool):
        """``no_sync()`` for every candidate but the last (gradients accumulate, one all-reduce per step)."""
        return nullcontext() if last else self.no_sync()
