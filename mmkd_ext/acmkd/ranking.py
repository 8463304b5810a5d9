"""Which student is the weakest ("Cannikin law", paper Sec. III-C; METHODS.md 3.5)."""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence


def select_weakest(accuracies: Mapping[str, Optional[float]], order: Sequence[str],
                   previous: Optional[str] = None) -> Optional[str]:
    """The student with the lowest accuracy, to be S_low of the second-stage distillation.

    Ties and gaps, [R] ours: a student whose accuracy is missing (absent, ``None`` or NaN) is not
    ranked; when fewer than two students have an accuracy, nothing can be ranked and ``previous``
    is kept. Among students tied for the lowest accuracy, ``previous`` stays the weakest if it is one
    of them (no flip-flopping); otherwise the first of them in ``order`` (config order) is chosen.

    Args:
        accuracies: student name -> latest accuracy (any scale, higher is better).
        order: all student names, in config order.
        previous: the weakest student so far, or ``None``.

    Returns:
        The weakest student's name, or ``previous`` when it cannot be decided.
    """
    known = {}
    for name in order:
        acc = accuracies.get(name)
        if acc is not None and not math.isnan(float(acc)):
            known[name] = float(acc)
    if len(known) < 2:
        return previous
    lowest = min(known.values())
    tied = [name for name in order if known.get(name) == lowest]
    if previous in tied:
        return previous
    return tied[0]
