"""``FKDDistill``: teacher-free training of any mmpretrain student on stored soft labels (FKD Sec. 3.3)."""
from __future__ import annotations

from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmrazor.models.algorithms import BaseAlgorithm

from ..losses import fp32_loss, soft_cross_entropy
from ..registry import MODELS


@fp32_loss
def fkd_loss(logits: torch.Tensor, soft_labels: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """FKD's objective ``-sum_i P_i log S(R_i)`` (paper Sec. 3.3; Eq. 1 with the hard-label term dropped).

    Args:
        logits: (N, C) student logits of the N crops.
        soft_labels: (N, C) recovered stored teacher distributions.
        temperature: student temperature ([X] 1).

    Returns:
        Scalar: soft cross-entropy averaged over the crops.
    """
    return soft_cross_entropy(logits / temperature, soft_labels)


@MODELS.register_module()
class FKDDistill(BaseAlgorithm):
    """Train ``architecture`` (the student) with soft cross-entropy against stored teacher labels.

    No teacher is built or run: the labels come with the data (``FKDDataset`` puts the recovered
    distribution of every crop into each data sample under ``label_key``). Validation and testing
    use the student as is (``mode='predict'``), so MMEngine's ordinary ``ValLoop`` applies.

    Args:
        architecture: the student, any mmpretrain classifier whose ``mode='tensor'`` output is (N, C) logits.
        label_key: data-sample field with the soft labels (``'gt_score'``).
        temperature: student temperature ([X] 1).
        loss_weight: weight of the soft CE ([P] 1).
        hard_label_weight: weight of an extra hard-label CE (Eq. 1's first term; [P] 0, dropped by FKD).
        data_preprocessor: defaults to the student's.
        init_cfg: initialisation config.
    """

    def __init__(self, architecture: Union[BaseModel, Dict], label_key: str = 'gt_score', temperature: float = 1.0,
                 loss_weight: float = 1.0, hard_label_weight: float = 0.0, data_preprocessor: Optional[Dict] = None,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(architecture, data_preprocessor, init_cfg)
        self.label_key = label_key
        self.temperature = temperature
        self.loss_weight = loss_weight
        self.hard_label_weight = hard_label_weight

    def student_logits(self, inputs: torch.Tensor, data_samples: Optional[List] = None) -> torch.Tensor:
        out = self.architecture(inputs, data_samples, mode='tensor')
        return out[-1] if isinstance(out, (tuple, list)) else out

    def loss(self, inputs: torch.Tensor, data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """Soft CE of the student on the crops against their stored labels (+ optional hard CE)."""
        if not data_samples or self.label_key not in data_samples[0]:
            raise KeyError(f'FKDDistill needs the stored soft labels in data_samples[i].{self.label_key}; train it '
                           "on an FKDDataset (dataloader collate_fn=dict(type='fkd_collate'))")
        logits = self.student_logits(inputs, data_samples)
        # fp32 targets whatever the logits' dtype (--amp): fkd_loss casts 16-bit logits up, never the labels down
        targets = torch.stack([s.get(self.label_key) for s in data_samples]).to(logits.device, torch.float32)
        losses = dict(loss_fkd=self.loss_weight * fkd_loss(logits, targets, self.temperature))
        if self.hard_label_weight:
            labels = torch.cat([s.gt_label for s in data_samples]).to(logits.device)
            losses['loss_hard'] = self.hard_label_weight * F.cross_entropy(logits, labels)
        return losses
