"""mmkd_ext: FKD, VRM, KD-Zero, AMD and ACMKD knowledge distillation for MMRazor.

``import mmkd_ext`` (or ``custom_imports=dict(imports=['mmkd_ext'])`` in a config) first applies
the compatibility layer (:mod:`mmkd_ext.compat`), so MMRazor imports on current torch, then
registers every mmkd_ext class into the MMRazor / mmpretrain registries.
"""
from . import compat
from .version import __version__

compat.apply()

from . import (
    checks,  # noqa: E402  (friendlier errors for MMRazor recorders and logit losses)
    held_out,  # noqa: E402,F401  (HeldOutSubset: training images held out for selection)
    models,  # noqa: E402,F401  (shared backbones)
)

checks.apply()

from . import (  # noqa: E402,F401
    acmkd,  # one room per method
    amd,
    device_check,  # not a method: FakeCudaCheckHook, the fake-CUDA device check
    fkd,
    kd_zero,
    vrm,
)

__all__ = ['__version__', 'compat', 'checks']
