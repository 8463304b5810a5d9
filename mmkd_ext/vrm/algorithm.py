"""VRMDistill: teacher and student on the real and the virtual view, CE on both student views (Eq. 3).

The relation terms come from the distiller (``ConfigurableDistiller`` with a :class:`VRMLoss` fed by
``head.fc`` recorders), so every VRM option stays in the config.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.models.task_modules.recorder import RecorderManager
from mmrazor.models.utils import add_prefix
from torch import nn

from ..registry import MODELS
from .data_preprocessor import TwoViewDataPreprocessor

CE_REDUCTIONS = ('sum', 'mean')


def check_two_view_batch(batch_inputs: torch.Tensor, data_samples: Optional[List]) -> int:
    """Return B for a (2B, ...) ``[real; virtual]`` batch with B data samples, else raise ``ValueError``."""
    if data_samples is None:
        raise ValueError('VRMDistill.loss needs the data samples (ground-truth labels) for the CE of both views')
    num = len(data_samples)
    if batch_inputs.size(0) != 2 * num:
        raise ValueError(
            f'VRMDistill: got {batch_inputs.size(0)} images for {num} samples; VRM needs a real and a virtual view '
            'of every image. Add dict(type="VRMVirtualView", transforms=[dict(type="RandAugment", ...)]) to the '
            'train pipeline before PackInputs (see configs/vrm/)')
    return num


def merge_view_records(recorders: RecorderManager) -> None:
    """After separate real/virtual forwards, concatenate each recorder's two records into one (2B, ...) record."""
    for name, recorder in recorders.recorders.items():
        buffer = recorder.data_buffer
        if len(buffer) != 2 or not all(torch.is_tensor(b) for b in buffer):
            raise ValueError(f'VRMDistill(separate_bn_forward=True): recorder {name!r} holds {len(buffer)} records; '
                             'expected one tensor per view (record a module that runs once per forward)')
        merged = torch.cat(list(buffer))
        buffer.clear()
        buffer.append(merged)


def flatten_losses(losses: Dict) -> Dict[str, torch.Tensor]:
    """``{'loss_vrm': {'loss_isv': a, 'loss_icv': b}}`` -> ``{'loss_vrm.loss_isv': a, 'loss_vrm.loss_icv': b}``."""
    flat = dict()
    for name, value in losses.items():
        if isinstance(value, dict):
            flat.update({f'{name}.{k}': v for k, v in value.items()})
        else:
            flat[name] = value
    return flat


@MODELS.register_module()
class VRMDistill(SingleTeacherDistill):
    """Virtual relation matching distillation (paper Eq. 3: ``L_ce + alpha L^ISV + beta L^ICV``).

    The batch is ``[real; virtual]`` (2B images, B data samples) as built by :class:`VRMVirtualView` and
    :class:`TwoViewDataPreprocessor` (installed automatically around the student's preprocessor). The teacher
    (frozen, no gradient) and the student both see all 2B images; the distiller's recorders therefore hold
    (2B, C) logits for :class:`VRMLoss`.

    Args:
        distiller, teacher, teacher_ckpt, ...: as :class:`SingleTeacherDistill` (``teacher_trainable`` must stay
            False).
        ce_reduction: [R] ``'sum'`` (default, METHODS.md 5.7/V5: ``CE(z^s, y) + CE(z~^s, y)``) or ``'mean'``.
        separate_bn_forward: [R] False (default): one 2B forward, shared BN statistics (FixMatch-style);
            True: the real and virtual halves are forwarded separately.
        teacher_input_size: resize the images for the teacher only (bilinear), e.g. 32 for a CIFAR ResNet56
            teacher of a 224-px DeiT-Ti student (paper Table 3); None (default) feeds both the same images.
    """

    def __init__(self, distiller: dict, teacher: dict, ce_reduction: str = 'sum', separate_bn_forward: bool = False,
                 teacher_input_size: Optional[int] = None, **kwargs) -> None:
        super().__init__(distiller, teacher, **kwargs)
        if self.teacher_trainable:
            raise ValueError('VRMDistill: the teacher is a fixed reference (Eq. 3 uses detached teacher logits); '
                             'set teacher_trainable=False')
        if ce_reduction not in CE_REDUCTIONS:
            raise ValueError(f'VRMDistill: ce_reduction={ce_reduction!r} is not one of {CE_REDUCTIONS}')
        self.ce_reduction = ce_reduction
        self.separate_bn_forward = separate_bn_forward
        self.teacher_input_size = teacher_input_size
        if not isinstance(self.data_preprocessor, TwoViewDataPreprocessor):
            self.data_preprocessor = TwoViewDataPreprocessor(self.data_preprocessor)

    def _forward_views(self, model: nn.Module, batch_inputs: torch.Tensor, samples: List, mode: str,
                       recorders: RecorderManager):
        """Forward 2B images; with ``separate_bn_forward`` each view on its own, loss = mean of the two means."""
        if not self.separate_bn_forward:
            return model(batch_inputs, samples, mode=mode)
        num = batch_inputs.size(0) // 2
        out_r = model(batch_inputs[:num], samples[:num], mode=mode)
        out_v = model(batch_inputs[num:], samples[num:], mode=mode)
        merge_view_records(recorders)
        if mode == 'loss':
            return {k: (out_r[k] + out_v[k]) / 2 for k in out_r}
        return out_r

    def _teacher_inputs(self, batch_inputs: torch.Tensor) -> torch.Tensor:
        """The batch at the teacher's resolution (unchanged when ``teacher_input_size`` is None)."""
        size = self.teacher_input_size
        if size is None or tuple(batch_inputs.shape[-2:]) == (size, size):
            return batch_inputs
        return F.interpolate(batch_inputs, size=(size, size), mode='bilinear', align_corners=False)

    def _scale_ce(self, losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Losses are means over 2B images; 'sum' of the two view means is twice that."""
        factor = 2.0 if self.ce_reduction == 'sum' else 1.0
        return {k: v * factor if 'loss' in k else v for k, v in losses.items()}

    def loss(self, batch_inputs: torch.Tensor, data_samples: Optional[List[BaseDataElement]] = None) -> Dict:
        """CE on both student views plus the distiller's VRM terms.

        Args:
            batch_inputs: (2B, 3, H, W) ``[real; virtual]``.
            data_samples: B data samples (labels), shared by both views.

        Returns:
            ``student.loss`` (CE) and ``distill.<name>[.<term>]`` losses.
        """
        check_two_view_batch(batch_inputs, data_samples)
        samples = list(data_samples) * 2
        self.distiller.set_deliveries_override(False)
        with self.distiller.teacher_recorders, self.distiller.deliveries, torch.no_grad():
            self._forward_views(self.teacher, self._teacher_inputs(batch_inputs), samples, 'tensor',
                                self.distiller.teacher_recorders)
        self.distiller.set_deliveries_override(True)
        with self.distiller.student_recorders, self.distiller.deliveries:
            student_losses = self._forward_views(self.student, batch_inputs, samples, 'loss',
                                                 self.distiller.student_recorders)
        losses = dict()
        if self.calculate_student_loss:
            losses.update(add_prefix(self._scale_ce(student_losses), 'student'))
        if not self.distillation_stopped:
            losses.update(add_prefix(flatten_losses(self.distiller.compute_distill_losses()), 'distill'))
        return losses
