"""ACMKD: Adaptive Cross-architecture Mutual Knowledge Distillation (see configs/acmkd/README.md).

Importing this package registers ``ACMKDDistill`` (algorithm), ``ACMKDOptimWrapperConstructor``,
``ACMKDHook``, ``ACMKDValLoop`` and ``ACMKDTestLoop``.
"""
from . import plan, rednet, student  # noqa: F401  (run plan; RedNet backbone in mmpretrain; students for extract_student.py)
from .algorithm import ACMKDDistill
from .attention import CBAM, ParameterFreeAttention, to_feature_map, tokens_to_map
from .export import export_students, save_student
from .hooks import ACMKDHook
from .loops import ACMKDTestLoop, ACMKDValLoop
from .optim import ACMKDOptimWrapperConstructor
from .ranking import select_weakest

__all__ = [
    'ACMKDDistill', 'ACMKDHook', 'ACMKDValLoop', 'ACMKDTestLoop', 'ACMKDOptimWrapperConstructor', 'CBAM',
    'ParameterFreeAttention', 'tokens_to_map', 'to_feature_map', 'export_students', 'save_student', 'select_weakest'
]
