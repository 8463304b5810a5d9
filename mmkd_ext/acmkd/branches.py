"""The networks of ACMKD: a classifier, the stages it is distilled on, and attention modules on them.

Each student is one :class:`StudentBranch` (classifier + its attention modules), registered as a
top-level module of the algorithm, so that MMEngine's ``MMSeparateDistributedDataParallel`` wraps
every student in its own DDP and each student's optimizer sees only its own parameters.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmrazor.models.task_modules.recorder import RecorderManager
from torch import nn

from ..checks import check_module_name
from .attention import AttentionMaps, build_attention, to_feature_map


class StageRecorder:
    """Records the outputs of named stages of a classifier as (B, C, H, W) maps (MMRazor ``ModuleOutputs``).

    Args:
        classifier: an mmpretrain classifier (``forward(inputs, mode='tensor')`` gives logits).
        stages: dotted module names, e.g. ``['backbone.layer1', 'backbone.layer2']``.
        role: who the network is, for error messages (``"ACMKD student 'vit'"``).
        num_extra_tokens: leading class/distillation tokens of token outputs (``None`` infers).
    """

    def __init__(self, classifier: nn.Module, stages: Sequence[str], role: str,
                 num_extra_tokens: Optional[int] = None) -> None:
        if not stages:
            raise ValueError(f'{role}: give at least one stage (module name) to distil attention on')
        for stage in stages:
            check_module_name(classifier, stage, f'{role} stage')
        self.stages = list(stages)
        self.num_extra_tokens = num_extra_tokens
        self.manager = RecorderManager(
            {f'stage{i}': dict(type='ModuleOutputs', source=s) for i, s in enumerate(self.stages)})
        self.manager.initialize(classifier)

    def __call__(self, classifier: nn.Module, inputs: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Run ``classifier`` and collect the stage maps.

        Args:
            classifier: the classifier the recorders were initialised on.
            inputs: (B, 3, H, W) preprocessed images.

        Returns:
            (logits (B, K), [stage maps (B, C_i, H_i, W_i)]).
        """
        with self.manager:
            logits = classifier(inputs, mode='tensor')
        maps = [
            to_feature_map(self.manager.get_recorder(f'stage{i}').get_record_data(), self.num_extra_tokens)
            for i in range(len(self.stages))
        ]
        if isinstance(logits, (tuple, list)):
            logits = logits[-1]
        return logits, maps


class AttentionHeads(nn.Module):
    """One attention module per distilled stage of one network (paper Eq. 4).

    Args:
        channels: C_i of each stage.
        kind: ``'cbam'`` or ``'parameter_free'``.
        reduction: CBAM MLP ratio.
        kernel_size: CBAM spatial kernel.
        num_classes: when given (teacher side, CBAM), a temporary linear probe per stage on
            GAP(F'') used to pre-train the teacher's attention modules ([R] METHODS.md 3.4).
    """

    def __init__(self, channels: Sequence[int], kind: str = 'cbam', reduction: int = 16, kernel_size: int = 7,
                 num_classes: Optional[int] = None) -> None:
        super().__init__()
        self.attentions = nn.ModuleList([build_attention(kind, c, reduction, kernel_size) for c in channels])
        self.probes = None
        if num_classes is not None and kind == 'cbam':
            self.probes = nn.ModuleList([nn.Linear(c, num_classes) for c in channels])

    def forward(self, feats: Sequence[torch.Tensor], probe: bool = False):
        """One :class:`AttentionMaps` per stage; with ``probe=True`` also the probes' (B, K) logits.

        Args:
            feats: one (B, C_i, H_i, W_i) map per stage.
            probe: also run the linear probes on GAP(F'') (teacher pre-training; inside ``forward``
                so that DDP sees every parameter used).

        Returns:
            ``maps`` or ``(maps, probe_logits)``.
        """
        maps = [att(f) for att, f in zip(self.attentions, feats)]
        if not probe:
            return maps
        if self.probes is None:
            raise RuntimeError('these attention heads have no probes (student side or parameter-free attention)')
        return maps, [p(m.refined.mean(dim=(2, 3))) for p, m in zip(self.probes, maps)]


class StudentBranch(nn.Module):
    """One student: its mmpretrain classifier and its attention modules (a side branch).

    Args:
        classifier: the student classifier (built).
        recorder: its :class:`StageRecorder`.
        heads: its :class:`AttentionHeads`.
    """

    def __init__(self, classifier: nn.Module, recorder: StageRecorder, heads: AttentionHeads) -> None:
        super().__init__()
        self.classifier = classifier
        self.heads = heads
        self._recorder = recorder

    def forward(self, inputs: torch.Tensor, with_attention: bool = True) -> Tuple[torch.Tensor, List[AttentionMaps]]:
        """Logits and attention maps of the student.

        Args:
            inputs: (B, 3, H, W).
            with_attention: compute the attention maps (skipped, ``[]``, while L_att is off).

        Returns:
            (logits (B, K), one :class:`AttentionMaps` per stage).
        """
        logits, feats = self._recorder(self.classifier, inputs)
        return logits, (self.heads(feats) if with_attention else [])


@torch.no_grad()
def probe_shapes(classifier: nn.Module, recorder: StageRecorder, input_size: Sequence[int],
                 in_channels: int = 3) -> Tuple[int, List[Tuple[int, int, int]]]:
    """Number of classes and (C, H, W) of every recorded stage, from one dry forward pass.

    Args:
        classifier: the classifier.
        recorder: its stage recorder.
        input_size: (H, W) of the training images after preprocessing.
        in_channels: image channels.

    Returns:
        (K, [(C_i, H_i, W_i)]).
    """
    was_training = classifier.training
    classifier.eval()
    try:
        device = next(classifier.parameters()).device
        logits, feats = recorder(classifier, torch.zeros(2, in_channels, *input_size, device=device))
    finally:
        classifier.train(was_training)
    return int(logits.shape[1]), [tuple(int(v) for v in f.shape[1:]) for f in feats]


def check_same_classes(num_classes: Dict[str, int]) -> int:
    """Raise ``ValueError`` listing every network's class count unless they all agree; return the count."""
    if len(set(num_classes.values())) != 1:
        listing = ', '.join(f'{n}: {k}' for n, k in num_classes.items())
        raise ValueError(f'ACMKD needs the teacher and every student to predict the same classes, but the heads '
                         f'have different class counts ({listing}); set the same num_classes in every head')
    return next(iter(num_classes.values()))
