"""``--launcher pytorch`` on machines without a GPU (CPU DDP over gloo).

MMEngine 0.10.7 cannot start distributed training without a GPU: ``init_dist`` calls
``torch.cuda.set_device(local_rank)`` unconditionally ("Found no NVIDIA driver"), and the Runner's
DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules.
:func:`prepare_distributed` initialises the gloo process group itself before the Runner is built
(the Runner then skips ``init_dist``) and sets ``device_ids=None`` on the model wrapper. With a GPU
nothing changes: MMEngine's own nccl path, one device per rank.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_distributed(cfg: Config, launcher: str) -> bool:
    """Make ``cfg`` trainable under ``launcher`` on this machine.

    Args:
        cfg: the full config; ``model_wrapper_cfg`` and ``env_cfg`` may be edited in place.
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        True when the CPU (gloo) path was set up; False when MMEngine's own path applies.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(f"launcher {launcher!r} without a GPU is not supported; use --launcher pytorch "
                           '(torchrun, tools/dist_train.sh), which trains on CPU with gloo')
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if var not in os.environ:
            raise RuntimeError(f'--launcher pytorch needs {var} in the environment; start the job with '
                               'tools/dist_train.sh CONFIG N or torchrun --nproc_per_node N tools/train.py ...')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
