"""Launchers on every machine: ``pytorch`` / ``slurm`` / ``mpi`` with or without a GPU.

MMEngine 0.10.7 cannot start distributed training without a GPU: ``init_dist`` calls
``torch.cuda.set_device(local_rank)`` unconditionally ("Found no NVIDIA driver"), and the Runner's
DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules.
:func:`prepare_distributed` initialises the gloo process group itself before the Runner is built
(the Runner then skips ``init_dist``) and sets ``device_ids=None`` on the model wrapper. With a GPU
nothing changes: MMEngine's own nccl path, one device per rank.

Tools that start their own process group (FKD label generation, KD-Zero search) read torch's
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`export_torch_env` derives them from ``SLURM_*`` (``srun``) or ``OMPI_COMM_WORLD_*``
(``mpirun``) exactly as MMEngine's ``_init_dist_slurm`` / ``_init_dist_mpi`` do, so every tool
accepts the same ``--launcher`` values as ``tools/train.py``.
"""
from __future__ import annotations

import os
import subprocess
from typing import Callable, Dict, MutableMapping, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config

DEFAULT_MASTER_PORT = '29500'  # torch.distributed's default, as in MMEngine
# [R] under Slurm without MASTER_PORT: a port per job, SLURM_PORT_BASE + SLURM_JOB_ID % SLURM_PORT_SPAN
# (below Linux's ephemeral range 32768-60999), so two jobs whose first node is the same do not collide
SLURM_PORT_BASE, SLURM_PORT_SPAN = 20000, 10000
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


class LauncherEnvironmentError(KeyError, RuntimeError):
    """The launcher's environment variables are missing (the tool was not started by that launcher).

    A ``KeyError`` like MMEngine's ``os.environ['RANK']``, and a ``RuntimeError`` like mmkd_ext's earlier check.
    """

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0])


def _require(environ: MutableMapping[str, str], names, launcher: str, hint: str) -> Dict[str, str]:
    missing = [n for n in names if n not in environ]
    if missing:
        raise LauncherEnvironmentError(
            f"--launcher {launcher} needs {', '.join(missing)} in the environment; {hint}")
    return {n: environ[n] for n in names}


def first_slurm_host(nodelist: str) -> str:
    """The first host name of a Slurm node list (``node[01-04]`` -> ``node01``), via ``scontrol``."""
    out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist], capture_output=True, text=True,
                         check=False)
    hosts = out.stdout.split()
    if out.returncode != 0 or not hosts:
        raise RuntimeError(f'`scontrol show hostnames {nodelist}` failed ({out.stderr.strip()!r}); set MASTER_ADDR '
                           'to the first node of the job yourself')
    return hosts[0]


def slurm_master_port(environ: MutableMapping[str, str]) -> str:
    """The rendezvous port of a Slurm job: ``MASTER_PORT`` when set, else one derived from ``SLURM_JOB_ID``.

    Every task of a job computes the same port without talking to the others, and jobs with different ids
    whose first node is the same get different ports (until their ids are ``SLURM_PORT_SPAN`` apart).
    MMEngine's own rule (29500 if it is free on *this* task's node, else 29505) can give the ranks of one
    job different ports and still collides for a third job.

    Args:
        environ: the task's environment.

    Returns:
        The port, as a string; 29500 without ``SLURM_JOB_ID``.
    """
    if environ.get('MASTER_PORT'):
        return environ['MASTER_PORT']
    job_id = environ.get('SLURM_JOB_ID', '')
    if not job_id.isdigit():
        return DEFAULT_MASTER_PORT
    return str(SLURM_PORT_BASE + int(job_id) % SLURM_PORT_SPAN)


def torch_env_from_slurm(environ: MutableMapping[str, str],
                         first_host: Callable[[str], str] = first_slurm_host) -> Dict[str, str]:
    """torch's rendezvous variables of one ``srun`` task (MMEngine's ``_init_dist_slurm`` rules).

    Args:
        environ: the task's environment, with ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``
            and ``SLURM_NODELIST`` (srun sets them).
        first_host: node list -> first host name (``scontrol show hostnames``; replaceable in tests).

    Returns:
        ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` (kept when already set, else the
        job's first node) and ``MASTER_PORT`` (:func:`slurm_master_port`: kept when set, else from the job id).
    """
    slurm = _require(environ, ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID', 'SLURM_NODELIST'), 'slurm',
                     'start the job with srun (tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR)')
    return dict(RANK=slurm['SLURM_PROCID'], WORLD_SIZE=slurm['SLURM_NTASKS'], LOCAL_RANK=slurm['SLURM_LOCALID'],
                MASTER_ADDR=environ.get('MASTER_ADDR') or first_host(slurm['SLURM_NODELIST']),
                MASTER_PORT=slurm_master_port(environ))


def torch_env_from_mpi(environ: MutableMapping[str, str]) -> Dict[str, str]:
    """torch's rendezvous variables of one OpenMPI process (MMEngine's ``_init_dist_mpi`` rules)."""
    ompi = _require(environ, ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK',
                              'MASTER_ADDR'), 'mpi', 'start the job with mpirun and export MASTER_ADDR')
    return dict(RANK=ompi['OMPI_COMM_WORLD_RANK'], WORLD_SIZE=ompi['OMPI_COMM_WORLD_SIZE'],
                LOCAL_RANK=ompi['OMPI_COMM_WORLD_LOCAL_RANK'], MASTER_ADDR=ompi['MASTER_ADDR'],
                MASTER_PORT=environ.get('MASTER_PORT') or DEFAULT_MASTER_PORT)


def torch_env_from_pytorch(environ: MutableMapping[str, str]) -> Dict[str, str]:
    """torch's rendezvous variables as torchrun sets them (checked; LOCAL_RANK only when set, see ``--local_rank``)."""
    env = _require(environ, ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'), 'pytorch',
                   'start the job with torchrun --nproc_per_node N ... or tools/dist_train.sh CONFIG N')
    if 'LOCAL_RANK' in environ:
        env['LOCAL_RANK'] = environ['LOCAL_RANK']
    return env


def export_torch_env(launcher: str, environ: Optional[MutableMapping[str, str]] = None) -> Dict[str, str]:
    """Set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` for ``launcher``.

    Args:
        launcher: one of :data:`LAUNCHERS`; ``'none'`` exports nothing.
        environ: the environment to read and update (``os.environ`` by default).

    Returns:
        The variables written (empty for ``'none'``).
    """
    environ = os.environ if environ is None else environ
    if launcher not in LAUNCHERS:
        raise ValueError(f'unknown launcher {launcher!r}; choose one of {LAUNCHERS}')
    readers = dict(pytorch=torch_env_from_pytorch, slurm=torch_env_from_slurm, mpi=torch_env_from_mpi)
    if launcher == 'none':
        return {}
    env = readers[launcher](environ)
    environ.update(env)
    return env


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
    export_torch_env(launcher)  # slurm / mpi: RANK & co. from SLURM_* / OMPI_*; pytorch: checked
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    env_cfg = cfg.get('env_cfg') or {}
    env_cfg['dist_cfg'] = {**(env_cfg.get('dist_cfg') or {}), 'backend': 'gloo'}
    cfg.env_cfg = env_cfg  # assigned back: Config converts a new dict, so in-place edits of a default get lost
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
