"""kd_zero: KD-Zero, evolving knowledge distillers (NeurIPS 2023); see configs/kd_zero/README.md.

- :mod:`.operations`: the operation library of Table 1 (transforms, distances, calibrations).
- :mod:`.genome`: the distiller genome (Eq. 1), its search space and validation.
- :mod:`.losses`: ``KDZeroLoss``, the searched distiller as an MMRazor loss (Eq. 1 / Eq. 3).
- :mod:`.fitness`: CE + sharpness gap - linear CKA.
- :mod:`.hooks`: the loss-rejection protocol of the proxy runs.
- :mod:`.proxy`: genome -> ConfigurableDistiller config; short real MMRazor proxy runs.
- :mod:`.search`: the evolutionary search (and Rand-KD), resumable, rank-distributed.
"""
from . import config_rules, fitness, genome, hooks, losses, operations, plan, proxy, report, search  # noqa: F401
from .genome import Genome, GenomeError, SearchSpace
from .losses import KDZeroLoss

__all__ = ['Genome', 'GenomeError', 'SearchSpace', 'KDZeroLoss']
