"""Restore the torch quantization names that MMRazor 1.0.0 needs at import time.

``import mmrazor.models`` fails on torch>=2 with a misleading "``torch>=1.13`` is not installed
properly" (upstream issues open-mmlab/mmrazor#615 and #632). The cause is
``mmrazor/structures/quantization/backend_config/common_operator_config_utils.py``, which runs at
import time and

1. imports ``reverse2``, ``reverse3`` and ``reverse_sequential_wrapper2`` from
   ``torch.ao.quantization.fuser_method_mappings`` (removed in torch 2.0, where fuser methods
   take ``is_qat`` and are no longer wrapped);
2. reaches ``torch.ao.quantization.backend_config.utils`` as an attribute, which current torch
   only binds once that submodule is imported;
3. calls ``BackendPatternConfig._set_num_tensor_args_to_observation_type``,
   ``_set_input_type_to_index`` and friends, private setters that current torch removed.

Each patch below is applied only where torch lacks the name (``apply`` reports what it did), so
on a torch that still has them nothing changes. None of them alters torch behaviour used for
training: they only let MMRazor's *quantization* backend configs be constructed at import time.
MMRazor quantization itself (QAT/PTQ) is not supported by mmkd_ext.
"""
from __future__ import annotations

import importlib
from typing import Callable, List

_FUSER_MODULE = 'torch.ao.quantization.fuser_method_mappings'

# Private setters that MMRazor's backend configs call; each stores its value on the config under
# the attribute name torch<2 used, and returns the config so chained calls keep working.
_REMOVED_PATTERN_SETTERS = {
    '_set_num_tensor_args_to_observation_type': '_num_tensor_args_to_observation_type',
    '_set_input_type_to_index': '_input_type_to_index',
    '_set_overwrite_output_fake_quantize': '_overwrite_output_fake_quantize',
    '_set_overwrite_output_observer': '_overwrite_output_observer',
    '_set_input_output_observed': '_input_output_observed',
}


def reverse_sequential_wrapper2(sequential: Callable) -> Callable:
    """torch<2 ``reverse_sequential_wrapper2``: ``sequential(m2, m1)`` for a reversed pattern, is_qat ignored."""

    def fuser_method(is_qat, m1, m2):
        return sequential(m2, m1)

    return fuser_method


def reverse2(f: Callable) -> Callable:
    """torch<2 ``reverse2``: call ``f(is_qat, x, y)`` for a reversed pattern ``(y, x)``."""

    def reversed_fn(is_qat, x, y):
        return f(is_qat, y, x)

    return reversed_fn


def reverse3(f: Callable) -> Callable:
    """torch<2 ``reverse3``: call ``f(is_qat, x, y, z)`` for a nested pattern ``(z, (y, x))``."""

    def reversed_fn(is_qat, x, w):
        y, z = w
        return f(is_qat, z, y, x)

    return reversed_fn


def _make_setter(attribute: str) -> Callable:

    def setter(self, value):
        setattr(self, attribute, value)
        return self

    setter.__name__ = f'_set{attribute}'
    return setter


def apply() -> List[str]:
    """Apply every missing patch.

    Returns:
        The names that were restored (empty when torch already had all of them).
    """
    restored: List[str] = []
    fuser = importlib.import_module(_FUSER_MODULE)
    for fn in (reverse2, reverse3, reverse_sequential_wrapper2):
        if not hasattr(fuser, fn.__name__):
            setattr(fuser, fn.__name__, fn)
            restored.append(f'{_FUSER_MODULE}.{fn.__name__}')

    import torch.ao.quantization.backend_config as backend_config
    if 'utils' not in vars(backend_config):
        backend_config.utils = importlib.import_module(
            'torch.ao.quantization.backend_config.utils')
        restored.append('torch.ao.quantization.backend_config.utils')

    pattern_config = backend_config.BackendPatternConfig
    for setter_name, attribute in _REMOVED_PATTERN_SETTERS.items():
        if not hasattr(pattern_config, setter_name):
            setattr(pattern_config, setter_name, _make_setter(attribute))
            restored.append(f'BackendPatternConfig.{setter_name}')
    return restored
