"""The stage loop shared by the CIFAR backbones."""
from typing import Iterable, Sequence, Tuple

import torch
from torch import nn


def forward_stages(x: torch.Tensor, stages: Iterable[nn.Module], out_indices: Sequence[int]
                   ) -> Tuple[torch.Tensor, ...]:
    """Run ``x`` through ``stages`` in order.

    Args:
        x: the stem output.
        stages: the stages, in order.
        out_indices: indices of the stages whose outputs are returned.

    Returns:
        The outputs of the stages in ``out_indices``, in stage order.
    """
    outs = []
    for i, stage in enumerate(stages):
        x = stage(x)
        if i in out_indices:
            outs.append(x)
    return tuple(outs)
