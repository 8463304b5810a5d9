"""Rank-0 file writes for the AMD stages under ``torchrun`` (issue 13: one writer, barriers).

Every rank runs the AMD chain (the training stages need all of them); files (``scores.pth``,
``student.pth``, the selection plot and json, the exported models, ``amd_state.json``) are written by
rank 0 only and the other ranks wait at a barrier before they read them. The chain assumes a work dir
on a filesystem all ranks see (as MMEngine's ``--resume`` does).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from mmengine.dist import barrier, broadcast, broadcast_object_list, init_dist, is_distributed, is_main_process
from torch import nn


def on_main_process(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run ``fn`` on rank 0 only and give every rank its result (broadcast), then meet at a barrier.

    An exception on rank 0 is re-raised on every rank (as a ``RuntimeError`` naming it on the others), so
    no rank waits forever for a result that will not come.

    Args:
        fn: the function (it may write files); its result must be picklable.
        *args, **kwargs: its arguments.

    Returns:
        ``fn(*args, **kwargs)`` as computed on rank 0.
    """
    if not is_distributed():
        return fn(*args, **kwargs)
    box = [None]
    if is_main_process():
        try:
            box = [('ok', fn(*args, **kwargs))]
        except Exception as exc:  # re-raised below after telling the other ranks
            box = [('error', f'{type(exc).__name__}: {exc}')]
            broadcast_object_list(box, src=0)
            raise
    broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == 'error':
        raise RuntimeError(f'rank 0 failed in {getattr(fn, "__name__", fn)}: {value}')
    barrier()
    return value


def save_on_main_process(obj: Any, path: str) -> str:
    """``torch.save(obj, path)`` by rank 0; every rank returns after the file is complete."""
    return on_main_process(_save, obj, path)


def _save(obj: Any, path: str) -> str:
    torch.save(obj, path)
    return path


def start_process_group(cfg) -> None:
    """Start the process group of a ``--launcher`` run before the first stage needs it (no-op otherwise).

    The importance stage runs before any MMEngine Runner (which would start it); without a GPU
    :func:`mmkd_ext.launch.load_config` has started it already (gloo).

    Args:
        cfg: the config, with ``launcher`` and ``env_cfg.dist_cfg`` as MMEngine reads them.
    """
    launcher = cfg.get('launcher', 'none') or 'none'
    if launcher != 'none' and not is_distributed():
        init_dist(launcher, **dict(cfg.get('env_cfg', {}).get('dist_cfg', {})))


def broadcast_buffers(module: nn.Module, src: int = 0) -> int:
    """Give every rank rank ``src``'s buffers of ``module`` (BN running statistics, the per-candidate BN bank).

    DDP broadcasts buffers only at a synchronised forward; AMD's candidates after the first of a step run under
    ``no_sync`` and update their BN statistics per rank, so the ranks would validate different statistics.
    No-op in a single process.

    Args:
        module: the model (not the DDP wrapper).
        src: the rank whose buffers win.

    Returns:
        The number of buffers broadcast (0 without a process group).
    """
    if not is_distributed():
        return 0
    buffers = [b for b in module.buffers() if b.numel()]
    with torch.no_grad():
        for buf in buffers:
            broadcast(buf, src)
    return len(buffers)
