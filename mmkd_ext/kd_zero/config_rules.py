"""The config's ``kd_zero_genome`` is the genome of its KD-Zero losses, and fits the task it is applied to.

MMEngine evaluates a base file's ``distill_losses=dict(..., genome=kd_zero_genome)`` when the base is read, so a child
config (or ``--cfg-options kd_zero_genome=...``) that sets a new ``kd_zero_genome`` would leave the losses on the
base's genome. :func:`apply_kd_zero_genome` (registered as a config rule, run by the tools before building) writes the
top-level genome into every ``KDZeroLoss`` of the model and logs the losses it changed.

On COCO (Sec. 4.3) the paper reuses the distiller searched on ImageNet on the detectors' FPN features: there are no
per-image class logits or labels there, so only ``feature`` knowledge without calibration can apply; other genomes
are refused here, before training, with what to change.
"""
from __future__ import annotations

import logging

from mmengine.logging import print_log

from ..config_rules import register_config_rule
from .genome import Genome, GenomeError
from .task_outputs import infer_task


def _kd_zero_losses(cfg) -> dict:
    distiller = (cfg.get('model') or {}).get('distiller') or {}
    losses = distiller.get('distill_losses') or {}
    return {name: loss for name, loss in losses.items()
            if isinstance(loss, dict) and str(loss.get('type', '')).split('.')[-1] == 'KDZeroLoss'}


def check_genome_fits_detection(genome: Genome) -> None:
    """Raise :class:`GenomeError` for a genome that cannot act on FPN feature maps (paper Sec. 4.3)."""
    if genome.knowledge != 'feature':
        raise GenomeError(
            f'kd_zero_genome distils {genome.knowledge!r} knowledge, but the COCO configs apply the distiller to the '
            "FPN feature maps (B, 256, H, W): set kd_zero_genome.knowledge='feature' to apply its operations "
            f'({genome.t1} > {genome.t2} > {genome.t3}, {genome.distance}) to FPN features')
    if genome.calibration != 'no':
        raise GenomeError(
            f'kd_zero_genome calibration {genome.calibration!r} weights each image by its class logits/labels, '
            "which a detector's FPN features do not have: set kd_zero_genome.calibration='no' ([R] METHODS.md 2.8: "
            'the ImageNet-searched distiller is applied to FPN features without calibration)')


@register_config_rule
def apply_kd_zero_genome(cfg) -> None:
    """Write ``cfg.kd_zero_genome`` into every ``KDZeroLoss`` of ``cfg.model`` and check it fits the task."""
    genome = cfg.get('kd_zero_genome')
    losses = _kd_zero_losses(cfg)
    if genome is None or not losses:
        return
    genome = dict(genome)
    changed = [name for name, loss in losses.items() if dict(loss.get('genome') or {}) != genome]
    for loss in losses.values():
        loss['genome'] = dict(genome)
    if changed:
        print_log(f'kd_zero_genome {genome} now drives {", ".join(sorted(changed))} (they were built from an '
                  'earlier value, e.g. the base config\'s)', logger='current', level=logging.INFO)
    if infer_task(cfg) == 'detection':
        check_genome_fits_detection(Genome.from_dict(genome))
