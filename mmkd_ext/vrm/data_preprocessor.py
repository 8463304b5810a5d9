"""Stack the real and virtual views of a batch into one (2B, ...) tensor ``[real; virtual]``."""
from __future__ import annotations

from typing import Any, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import nn

from ..registry import MODELS


def is_two_view_batch(inputs: Any) -> bool:
    """True for the collated output of ``img=[real, virtual]`` samples.

    ``pseudo_collate`` gives ``[[real_1..real_B], [virtual_1..virtual_B]]`` and ``default_collate``
    gives ``[(B, 3, H, W), (B, 3, H, W)]``; a one-view batch is a tensor or a list of (3, H, W) tensors.
    """
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
        return False
    return all(isinstance(v, (list, tuple)) or (torch.is_tensor(v) and v.dim() == 4) for v in inputs)


@MODELS.register_module()
class TwoViewDataPreprocessor(BaseDataPreprocessor):
    """Run a classification data preprocessor on each view and concatenate: (2B, 3, H, W).

    One-view batches (validation) pass through the wrapped preprocessor unchanged.

    Args:
        preprocessor: the wrapped preprocessor (module or config), e.g. the student's
            ``ClsDataPreprocessor``.
    """

    def __init__(self, preprocessor: Union[dict, nn.Module]) -> None:
        super().__init__()
        self.preprocessor = MODELS.build(preprocessor) if isinstance(preprocessor, dict) else preprocessor

    def forward(self, data: dict, training: bool = False) -> dict:
        """``data['inputs']`` two views -> ``dict(inputs=(2B, ...), data_samples=B samples)``."""
        if not is_two_view_batch(data['inputs']):
            return self.preprocessor(data, training)
        if getattr(self.preprocessor, 'batch_augments', None) is not None:
            raise ValueError('TwoViewDataPreprocessor: batch augments (Mixup/CutMix) would mix the real and virtual '
                             'views differently; remove batch_augments from the data preprocessor for VRM')
        real, virtual = data['inputs']
        out_r = self.preprocessor(dict(inputs=real, data_samples=data.get('data_samples')), training)
        out_v = self.preprocessor(dict(inputs=virtual, data_samples=None), training)
        if out_r['inputs'].shape != out_v['inputs'].shape:
            raise ValueError(f'TwoViewDataPreprocessor: real views {tuple(out_r["inputs"].shape)} and virtual views '
                             f'{tuple(out_v["inputs"].shape)} differ in shape; they must stack into one batch')
        return dict(inputs=torch.cat([out_r['inputs'], out_v['inputs']]), data_samples=out_r['data_samples'])
