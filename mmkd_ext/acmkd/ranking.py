"""Which student is the weakest ("Cannikin law", paper Sec. III-C; METHODS.md 3.5).

[R] The accuracies that rank the students are measured by default on training images held out of training
(``ACMKDHook(rank_by='held_out')`` with a ``HeldOutSubset(part='train')`` training set, :mod:`mmkd_ext.held_out`),
not on ``val``, which for CIFAR-100 is the test set the students are reported on.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence

import torch
from mmengine.evaluator import Evaluator


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


@torch.no_grad()
def held_out_accuracies(model, dataloader, evaluators: Mapping[str, Evaluator], metric: str) -> Dict[str, float]:
    """Each student's ``metric`` on the held-out images (every rank sees its shard; evaluators gather them).

    Args:
        model: the ``ACMKDDistill`` (unwrapped); evaluated in eval mode, left in train mode.
        dataloader: the held-out dataloader.
        evaluators: student name -> evaluator (dataset meta set).
        metric: e.g. ``'accuracy/top1'``.

    Returns:
        student name -> accuracy.
    """
    model.eval()
    try:
        for batch in dataloader:
            outputs = model.predict_all(batch, with_teacher=False)
            for name, evaluator in evaluators.items():
                evaluator.process(data_samples=outputs[name], data_batch=batch)
    finally:
        model.train()
    size = len(dataloader.dataset)
    return {name: float(evaluator.evaluate(size)[metric]) for name, evaluator in evaluators.items()}
