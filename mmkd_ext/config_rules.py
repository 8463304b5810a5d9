"""Rules applied to a loaded config before anything is built (``load_config`` of the tools, the config check).

A method room registers a rule for what a plain MMEngine config cannot express, e.g. KD-Zero's top-level
``kd_zero_genome`` that a child config overrides after the base file already built its losses from the old value.
"""
from __future__ import annotations

from typing import Callable, List

_RULES: List[Callable] = []


def register_config_rule(rule: Callable) -> Callable:
    """Register ``rule(cfg) -> None`` (a decorator); rules run in registration order."""
    _RULES.append(rule)
    return rule


def apply_config_rules(cfg) -> None:
    """Apply every registered rule to ``cfg`` (in place)."""
    for rule in _RULES:
        rule(cfg)
