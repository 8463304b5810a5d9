"""Soft-label compression for the FKD label store (FKD paper, Sec. 3.5, Eqs. 3-7).

A teacher's soft label ``p`` (C probabilities after softmax) is stored per crop in one of five forms
and recovered to a full C-way distribution at training time:

=====================  ===========================  ===============================================
strategy               stored per crop              recovered distribution
=====================  ===========================  ===============================================
``full``               C values                     ``p`` (re-normalised after fp16 rounding)
``hard``               1 index (Eq. 3)              one-hot at ``argmax p``
``smoothing``          1 index + 1 value (Eq. 4)    ``p_c`` at the argmax, ``(1 - p_c)/(C - 1)`` elsewhere
``marginal_smoothing`` K indices + K values (Eq. 5)  top-K kept, ``(1 - sum topK)/(C - K)`` elsewhere
``marginal_renorm``    K indices + K values (Eq. 6)  top-K kept, 0 elsewhere, l1-normalised (Eq. 7)
=====================  ===========================  ===============================================

Values are stored in fp16 by default. Recovery is done in float32; where fp16 rounding makes the
kept values sum to slightly more than 1, the spread mass is clamped at 0 and the vector is
re-normalised, so a recovered distribution always sums to 1 ([R] ours, the paper stores fp32/fp16
without saying how rounding is handled).

Eq. 3 takes the argmax of the logits; the argmax of ``softmax(z / temp)`` is the same class, so all
strategies here work from probabilities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

STRATEGIES = ('full', 'hard', 'smoothing', 'marginal_smoothing', 'marginal_renorm')
TOPK_STRATEGIES = ('marginal_smoothing', 'marginal_renorm')
VALUE_DTYPES = {'float16': np.float16, 'float32': np.float32}


# ----------------------------------------------------------------------------------------------
# Compression: probabilities -> (indices, values). Pure functions, one per equation.
# ----------------------------------------------------------------------------------------------
def hard_label(probs: Tensor) -> Tensor:
    """The teacher's hard label per crop (FKD Eq. 3).

    Args:
        probs: (N, C) teacher probabilities (or logits: the argmax is the same).

    Returns:
        (N, 1) int64 class indices.
    """
    return probs.argmax(dim=1, keepdim=True)


def smoothing(probs: Tensor) -> Tuple[Tensor, Tensor]:
    """Keep the probability of the hard label only (FKD Eq. 4); the rest is spread on recovery.

    Args:
        probs: (N, C) teacher probabilities after softmax.

    Returns:
        (indices, values), each (N, 1): the argmax class and its probability.
    """
    values, indices = probs.max(dim=1, keepdim=True)
    return indices, values


def top_k(probs: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The K largest probabilities per crop, shared by marginal smoothing (Eq. 5) and re-norm (Eq. 6).

    Args:
        probs: (N, C) teacher probabilities after softmax.
        k: how many classes to keep, 1 <= k < C.

    Returns:
        (indices, values), each (N, k), values in descending order.
    """
    check_k(k, probs.shape[1])
    values, indices = probs.topk(k, dim=1, largest=True, sorted=True)
    return indices, values


def check_k(k: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless 1 <= k < num_classes (top-K strategies)."""
    if not 1 <= k < num_classes:
        raise ValueError(f'FKD top-K label compression needs 1 <= K < C, got K={k} for C={num_classes} classes; '
                         f"with K >= C nothing is compressed: use strategy='full' instead")


# ----------------------------------------------------------------------------------------------
# Recovery: (indices, values) -> (N, C) distributions.
# ----------------------------------------------------------------------------------------------
def _scatter(indices: Tensor, values: Tensor, num_classes: int, fill: Tensor) -> Tensor:
    """(N, C) tensor equal to ``fill`` (N, 1) everywhere except ``values`` at ``indices``."""
    out = fill.expand(indices.shape[0], num_classes).clone()
    return out.scatter_(1, indices.long(), values)


def _normalise(dist: Tensor) -> Tensor:
    return dist / dist.sum(dim=1, keepdim=True)


def recover_hard(indices: Tensor, num_classes: int) -> Tensor:
    """One-hot distributions from stored hard labels (Eq. 3).

    Args:
        indices: (N, 1) class indices.
        num_classes: C.

    Returns:
        (N, C) float32.
    """
    zeros = torch.zeros(indices.shape[0], 1)
    return _scatter(indices, torch.ones(indices.shape, dtype=torch.float32), num_classes, zeros)


def recover_marginal_smoothing(indices: Tensor, values: Tensor, num_classes: int) -> Tensor:
    """Eq. 5 (and Eq. 4, its K = 1 case): kept values, ``(1 - sum kept)/(C - K)`` on the other classes.

    Args:
        indices: (N, K) kept classes.
        values: (N, K) their probabilities.
        num_classes: C > K.

    Returns:
        (N, C) float32 distributions summing to 1.
    """
    values = values.float()
    k = indices.shape[1]
    check_k(k, num_classes)
    rest = ((1.0 - values.sum(dim=1, keepdim=True)) / (num_classes - k)).clamp(min=0.0)
    return _normalise(_scatter(indices, values, num_classes, rest))


def recover_smoothing(indices: Tensor, values: Tensor, num_classes: int) -> Tensor:
    """Eq. 4: ``p`` at the hard label, ``(1 - p)/(C - 1)`` elsewhere.

    Args:
        indices: (N, 1) hard labels.
        values: (N, 1) their probabilities.
        num_classes: C.

    Returns:
        (N, C) float32 distributions summing to 1.
    """
    return recover_marginal_smoothing(indices, values, num_classes)


def recover_marginal_renorm(indices: Tensor, values: Tensor, num_classes: int) -> Tensor:
    """Eqs. 6-7: kept values, 0 elsewhere, divided by their sum.

    Args:
        indices: (N, K) kept classes.
        values: (N, K) their probabilities (raw top-K, as stored).
        num_classes: C > K.

    Returns:
        (N, C) float32 distributions summing to 1.
    """
    check_k(indices.shape[1], num_classes)
    zeros = torch.zeros(indices.shape[0], 1)
    return _normalise(_scatter(indices, values.float(), num_classes, zeros))


def recover_full(values: Tensor) -> Tensor:
    """Stored full distributions, re-normalised after fp16 rounding.

    Args:
        values: (N, C) probabilities.

    Returns:
        (N, C) float32 distributions summing to 1.
    """
    return _normalise(values.float().clamp(min=0.0))


# ----------------------------------------------------------------------------------------------
# The codec: what the label store uses.
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelCodec:
    """Encode teacher probabilities into fixed-size (indices, values) arrays and decode them back.

    Args:
        strategy: one of :data:`STRATEGIES`.
        num_classes: C.
        k: K of the top-K strategies (ignored otherwise); paper default 5.
        value_dtype: ``'float16'`` (default, as in the paper's storage analysis) or ``'float32'``.
    """
    strategy: str
    num_classes: int
    k: int = 5
    value_dtype: str = 'float16'

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f'unknown FKD label strategy {self.strategy!r}; choose one of {STRATEGIES}')
        if self.value_dtype not in VALUE_DTYPES:
            raise ValueError(f'value_dtype must be one of {tuple(VALUE_DTYPES)}, got {self.value_dtype!r}')
        if self.num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {self.num_classes}')
        if self.strategy in TOPK_STRATEGIES:
            check_k(self.k, self.num_classes)

    @property
    def num_indices(self) -> int:
        """Indices stored per crop."""
        return {'full': 0, 'hard': 1, 'smoothing': 1}.get(self.strategy, self.k)

    @property
    def num_values(self) -> int:
        """Values stored per crop."""
        return {'full': self.num_classes, 'hard': 0, 'smoothing': 1}.get(self.strategy, self.k)

    @property
    def index_dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds a class index."""
        if self.num_classes <= 256:
            return np.dtype('u1')
        return np.dtype('<u2') if self.num_classes <= 65536 else np.dtype('<u4')

    @property
    def numpy_value_dtype(self) -> np.dtype:
        return np.dtype(VALUE_DTYPES[self.value_dtype]).newbyteorder('<')

    def encode(self, probs: Tensor) -> Tuple[np.ndarray, np.ndarray]:
        """Compress teacher probabilities.

        Args:
            probs: (N, C) probabilities after softmax.

        Returns:
            (indices, values): (N, num_indices) of :attr:`index_dtype` and (N, num_values) of the value dtype.
        """
        if probs.dim() != 2 or probs.shape[1] != self.num_classes:
            raise ValueError(f'expected (N, {self.num_classes}) teacher probabilities, got {tuple(probs.shape)}')
        probs = probs.detach().float().cpu()
        empty = torch.zeros(probs.shape[0], 0)
        if self.strategy == 'full':
            indices, values = empty.long(), probs
        elif self.strategy == 'hard':
            indices, values = hard_label(probs), empty
        elif self.strategy == 'smoothing':
            indices, values = smoothing(probs)
        else:
            indices, values = top_k(probs, self.k)
        return indices.numpy().astype(self.index_dtype), values.numpy().astype(self.numpy_value_dtype)

    def decode(self, indices: np.ndarray | Tensor, values: np.ndarray | Tensor) -> Tensor:
        """Recover full C-way distributions.

        Args:
            indices: (N, num_indices) stored indices.
            values: (N, num_values) stored values.

        Returns:
            (N, C) float32 distributions, each summing to 1.
        """
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        if self.strategy == 'full':
            return recover_full(values)
        if self.strategy == 'hard':
            return recover_hard(indices, self.num_classes)
        if self.strategy == 'marginal_renorm':
            return recover_marginal_renorm(indices, values, self.num_classes)
        return recover_marginal_smoothing(indices, values, self.num_classes)  # smoothing: its K = 1 case

    def bytes_per_crop(self) -> int:
        """Bytes of one compressed label (indices + values)."""
        return self.num_indices * self.index_dtype.itemsize + self.num_values * self.numpy_value_dtype.itemsize
