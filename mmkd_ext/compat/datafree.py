"""MMRazor's data-free distillation (DAFL, DFAD, ZSKT) in one process: one GPU, or the CPU.

``DataFreeDistillation`` / ``DAFLDataFreeDistillation`` read the generator's latent size as
``self.generator.module.latent_dim``: ``module`` is the attribute of the DDP wrapper that
``MMSeparateDistributedDataParallel`` puts around each submodule under a launcher. Without a launcher
the generator is not wrapped and the first training step raises ``AttributeError: 'DAFLGenerator' object has
no attribute 'module'``. :func:`apply` gives the generators a read-only ``module`` that is the generator
itself, so the same code reads the same ``latent_dim`` wrapped or not; under DDP the wrapper's own
``module`` is found first, as before.
"""
from __future__ import annotations

from typing import List


def _itself(self):
    """The generator itself: what DDP's ``module`` holds when the generator is wrapped."""
    return self


def apply() -> List[str]:
    """Add ``module`` to MMRazor's ``BaseGenerator`` (once; nothing if it already has one)."""
    from mmrazor.models.architectures.generators.base_generator import BaseGenerator
    if 'module' in vars(BaseGenerator):
        return []
    BaseGenerator.module = property(_itself, doc=_itself.__doc__)
    return ["mmrazor BaseGenerator.module (the generator itself when DDP does not wrap it)"]
