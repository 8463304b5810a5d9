"""AMD: automatic multi-step distillation through pruned teacher assistants (see configs/amd/README.md).

Importing this package registers ``AMDDistill`` (MMRazor MODELS), ``AMDCandidatesValLoop`` (LOOPS),
``AMDDistributedDataParallel`` (MODEL_WRAPPERS) and the
``AMDPrunedBackbone`` builder of exported models (mmpretrain / mmseg MODELS).
"""
from . import algorithm, export, loops, plan, student, wrapper  # noqa: F401  (registration, run plan; student: extract_student)
from .algorithm import AMDDistill
from .loops import AMDCandidatesValLoop
from .pruner import AMDPruner
from .wrapper import AMDDistributedDataParallel

__all__ = ['AMDDistill', 'AMDCandidatesValLoop', 'AMDPruner', 'AMDDistributedDataParallel']
