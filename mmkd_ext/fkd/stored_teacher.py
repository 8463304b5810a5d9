"""A "stored teacher": the FKD label store standing in for a teacher in MMRazor's logit distillers.

``StoredTeacher`` is a parameter-free ``BaseModel`` usable as the ``teacher`` of MMRazor's
``SingleTeacherDistill``. Its forward reads the recovered stored distribution ``p`` of each crop from
the data samples (``FKDDataset(label_key='fkd_score')`` + ``PackInputs(algorithm_keys=['fkd_score'])``)
and passes ``log p`` through its ``logits`` module (an ``nn.Identity``), so a teacher recorder
``dict(type='ModuleOutputs', source='logits')`` feeds any logit loss of ``ConfigurableDistiller``
(``KLDivergence``, ``DKDLoss``, ...) as if a teacher had produced those logits. The student's own
loss keeps the ground-truth label (``gt_label``), like vanilla KD.

Logits are recovered up to a per-row constant, which softmax ignores: ``softmax(log p / tau)`` is
``p^(1/tau)`` normalised, exactly the teacher's ``softmax(z / tau)`` for a ``full`` store generated at
temperature 1, and an approximation for compressed stores (classes outside the top-K share the
spread mass; with ``hard``/``marginal_renorm`` they get ``log(eps)``).
"""
from __future__ import annotations

from typing import List, Optional

import torch
from mmengine.model import BaseModel
from torch import nn

from ..registry import MODELS


def stored_logits(probs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Logits whose softmax is ``probs``: ``log(max(p, eps))`` (a per-row constant away from the teacher's).

    Args:
        probs: (N, C) stored distributions.
        eps: floor for zero probabilities.

    Returns:
        (N, C) logits.
    """
    return probs.clamp(min=eps).log()


@MODELS.register_module()
class StoredTeacher(BaseModel):
    """Teacher replayed from the label store (see the module docstring).

    Args:
        label_key: data-sample field holding the stored distributions.
        eps: floor of zero probabilities before the log.
    """

    def __init__(self, label_key: str = 'fkd_score', eps: float = 1e-8) -> None:
        super().__init__()
        self.label_key = label_key
        self.eps = eps
        self.logits = nn.Identity()

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if not data_samples or self.label_key not in data_samples[0]:
            raise KeyError(f'StoredTeacher reads data_samples[i].{self.label_key}: train on an FKDDataset with '
                           f"label_key='{self.label_key}' and PackInputs(algorithm_keys=['{self.label_key}'])")
        probs = torch.stack([s.get(self.label_key) for s in data_samples]).to(inputs.device).float()
        logits = self.logits(stored_logits(probs, self.eps))
        return dict() if mode == 'loss' else logits
