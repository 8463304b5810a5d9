"""Loss math in fp32 under mixed precision (issue 13 item 3; METHODS.md 0 [R] "losses in fp32 under autocast").

Under ``torch.autocast`` the student's logits and features arrive in fp16 / bf16. Softmaxes, Gram
matrices, cosine similarities, entropies and sums over a batch lose digits or overflow in 16 bits
(fp16's largest value is 65504; bf16 keeps 8 significant bits), so every loss of mmkd_ext computes in
fp32: :func:`fp32_loss` switches autocast off for the call and casts its fp16 / bf16 tensor arguments
(also inside lists, tuples and dicts) to fp32. Gradients flow back through the casts to the 16-bit
inputs; fp32 and fp64 inputs are left as they are.
"""
from __future__ import annotations

import functools
from contextlib import ExitStack
from typing import Any, Callable, TypeVar

import torch

F = TypeVar('F', bound=Callable[..., Any])
HALF_DTYPES = (torch.float16, torch.bfloat16)


def to_fp32(value: Any) -> Any:
    """``value`` with every fp16 / bf16 tensor cast to fp32 (containers rebuilt, anything else unchanged).

    Args:
        value: a tensor, a (named) tuple, list or dict of them, or any other object.

    Returns:
        The same structure; other objects (modules, dataclasses, numbers) are returned as they are.
    """
    if torch.is_tensor(value):
        return value.float() if value.dtype in HALF_DTYPES else value
    if isinstance(value, tuple) and hasattr(value, '_fields'):  # namedtuple
        return type(value)(*(to_fp32(v) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_fp32(v) for v in value)
    if isinstance(value, dict):
        return type(value)((k, to_fp32(v)) for k, v in value.items())
    return value


def autocast_off() -> ExitStack:
    """A context that disables autocast on the CPU and, where there is one, on CUDA."""
    stack = ExitStack()
    stack.enter_context(torch.autocast('cpu', enabled=False))
    if torch.cuda.is_available():
        stack.enter_context(torch.autocast('cuda', enabled=False))
    return stack


def fp32_loss(fn: F) -> F:
    """Decorator: run the loss ``fn`` with autocast off and its 16-bit tensor arguments cast to fp32.

    Args:
        fn: a loss function or ``forward`` method.

    Returns:
        The wrapped function; its result is computed (and returned) in fp32 for fp16 / bf16 / fp32 inputs.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with autocast_off():
            return fn(*to_fp32(args), **to_fp32(kwargs))
    return wrapper  # type: ignore[return-value]
