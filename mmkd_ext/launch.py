"""Shared command-line plumbing of ``tools/*.py``: config loading, AMP, launcher set-up, one device per rank."""
from __future__ import annotations

import argparse
import atexit
import logging
import os
import os.path as osp
import re
import sys
from typing import Mapping, NamedTuple, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from .checks import check_cfg_options
from .compat.distributed import LAUNCHERS, export_torch_env, prepare_distributed
from .config_rules import apply_config_rules


class LaunchInfo(NamedTuple):
    """Where this process sits in the job: ``rank`` of ``world_size``, ``local_rank`` on its node, ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def device_for_local_rank(local_rank: int, cuda_available: bool, device_count: int) -> torch.device:
    """The device of the process with ``local_rank`` on its node: ``cuda:<local_rank>``, or ``cpu`` without CUDA.

    Args:
        local_rank: the process's index on its node (``LOCAL_RANK``), >= 0.
        cuda_available: ``torch.cuda.is_available()``.
        device_count: ``torch.cuda.device_count()`` (the GPUs this process can see).

    Returns:
        ``torch.device('cuda', local_rank)`` or ``torch.device('cpu')``.
    """
    if local_rank < 0:
        raise ValueError(f'LOCAL_RANK must be >= 0, got {local_rank}')
    if not cuda_available:
        return torch.device('cpu')
    if local_rank >= device_count:
        raise RuntimeError(
            f'LOCAL_RANK {local_rank} needs GPU {local_rank}, but this process sees {device_count} GPU(s) '
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); start at most "
            f'{device_count} processes per node (torchrun --nproc_per_node, GPUS_PER_NODE of tools/slurm_*.sh)')
    return torch.device('cuda', local_rank)


def select_device(local_rank: Optional[int] = None) -> torch.device:
    """Pick this process's device from ``LOCAL_RANK`` and make it CUDA's current device.

    Afterwards ``.cuda()``, ``torch.device('cuda')`` and MMEngine's ``get_device()`` of this process all mean
    its own GPU, so no two ranks of a node share GPU 0.

    Args:
        local_rank: overrides ``$LOCAL_RANK`` (default 0).

    Returns:
        The chosen device.
    """
    if local_rank is None:
        local_rank = int(os.environ.get('LOCAL_RANK', 0))
    device = device_for_local_rank(local_rank, torch.cuda.is_available(), torch.cuda.device_count())
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    return device


# per-node process counts, as the launchers export them (torchrun, srun --ntasks-per-node, OpenMPI)
LOCAL_WORLD_SIZE_VARS = ('LOCAL_WORLD_SIZE', 'SLURM_NTASKS_PER_NODE', 'OMPI_COMM_WORLD_LOCAL_SIZE')


def local_world_size(environ: Mapping[str, str]) -> int:
    """How many processes of the job run on this node (1 when no launcher variable says it).

    Args:
        environ: the process environment.

    Returns:
        The first of :data:`LOCAL_WORLD_SIZE_VARS` that is set (``'8(x2)'`` of Slurm read as 8), else 1.
    """
    for name in LOCAL_WORLD_SIZE_VARS:
        match = re.match(r'\d+', environ.get(name, ''))
        if match and int(match.group()) > 0:
            return int(match.group())
    return 1


def cpu_threads(cores: int, processes: int, current: int) -> int:
    """torch threads per process so that ``processes`` processes do not oversubscribe ``cores`` cores.

    Args:
        cores: the cores this process may run on.
        processes: the processes sharing them (the local world size).
        current: torch's thread count now (its default: the physical cores).

    Returns:
        ``min(current, cores // processes)``, at least 1.
    """
    return max(1, min(current, cores // max(1, processes)))


def set_cpu_threads(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """On a CPU run without ``OMP_NUM_THREADS``: one share of the cores per process of this node, said in the log.

    torch starts as many intra-op threads as the machine has cores in every process; two ranks on two cores then
    spin four threads and each step is many times slower (issue 24: 17x on a loaded 2-core machine). With
    ``OMP_NUM_THREADS`` set, or on a GPU, nothing changes.

    Args:
        environ: the environment (``os.environ`` by default).

    Returns:
        The thread count set, or None when it was left alone.
    """
    environ = os.environ if environ is None else environ
    if torch.cuda.is_available() or environ.get('OMP_NUM_THREADS'):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    processes, current = local_world_size(environ), torch.get_num_threads()
    threads = cpu_threads(cores, processes, current)
    if threads != current:
        torch.set_num_threads(threads)
    print_log(f'CPU run: {processes} process(es) of this job share the {cores} core(s) of this node: {threads} torch '
              f'thread(s) per process (torch default {current}); set OMP_NUM_THREADS to choose (e.g. '
              'OMP_NUM_THREADS=1 on a machine shared with other jobs)', logger='current', level=logging.INFO)
    return threads


def setup_launcher(launcher: str) -> LaunchInfo:
    """Rank, world size and device of a tool that runs its own processes (no MMEngine ``Runner`` launcher).

    Exports torch's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_*`` from the launcher's variables
    (``SLURM_*`` under srun, ``OMPI_*`` under mpirun) and selects ``cuda:LOCAL_RANK``; no process group is
    started (the tool decides whether it needs one).

    Args:
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        The process's :class:`LaunchInfo`.
    """
    env = export_torch_env(launcher)
    set_cpu_threads()
    local_rank = int(os.environ.get('LOCAL_RANK', 0))
    return LaunchInfo(int(env.get('RANK', 0)), int(env.get('WORLD_SIZE', 1)), local_rank, select_device(local_rank))


def close_process_group() -> None:
    """Destroy the default process group, if one is running, before the interpreter shuts down.

    A tool that returns without it leaves Gloo's worker threads to die during interpreter finalization, which
    aborts the process now and then (``terminate called without an active exception``, SIGABRT) even though the
    job itself finished; torchrun then reports the whole run as failed. In a multi-process group every rank first
    waits at a barrier, so no rank tears its connections down while another still finishes (rank 0 writing the
    last checkpoint). Call it once, after the tool's work succeeded (on an error some ranks may still wait in a
    collective, so the tool exits without it).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if torch.distributed.get_world_size() > 1:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def exit_after_tool(code: int = 0) -> None:
    """The end of a tool's ``__main__`` after its work succeeded.

    One process: closes a process group if one runs and returns (the interpreter exits as usual). Several ranks
    (``WORLD_SIZE`` > 1): closes the group, runs the ``atexit`` handlers (log files are flushed and closed), flushes
    stdout/stderr and leaves with ``os._exit(code)``, i.e. without interpreter finalization. Even with the group
    destroyed, a C++ thread torn down there aborted a rank about once in ten CI runs of the torchrun tests
    (``terminate called without an active exception``, SIGABRT after the training had finished and its checkpoint
    was written), and torchrun then reports the job as failed.
    """
    several_ranks = int(os.environ.get('WORLD_SIZE', '1')) > 1 or (
        torch.distributed.is_available() and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1)
    close_process_group()
    if several_ranks:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local_rank`` as in OpenMMLab tools."""
    parser.add_argument('--work-dir', help='the directory for logs and checkpoints')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. train_cfg.max_epochs=2')
    add_launcher_arg(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_launcher_arg(parser: argparse.ArgumentParser, help_extra: str = '') -> None:
    """``--launcher {none,pytorch,slurm,mpi}`` (pytorch: torchrun / tools/dist_*.sh; slurm: srun / tools/slurm_*.sh)."""
    parser.add_argument('--launcher', choices=list(LAUNCHERS), default='none',
                        help='job launcher (pytorch: torchrun, tools/dist_train.sh; slurm: srun, '
                             'tools/slurm_train.sh)' + help_extra)


def load_config(config: str, args: argparse.Namespace, default_work_root: str = './work_dirs') -> Config:
    """Load ``config`` and apply ``--cfg-options``, ``--work-dir`` and ``--launcher``.

    Args:
        config: path of a Python config file.
        args: parsed command line with the arguments of :func:`add_common_args`.
        default_work_root: where ``work_dir`` goes when neither the CLI nor the config sets it.

    Returns:
        The config, ready for ``Runner.from_cfg``.
    """
    if '::' not in config and not osp.isfile(config):  # 'mmkd_ext::kd/...' is resolved by Config.fromfile
        raise FileNotFoundError(f'config file {config!r} does not exist')
    export_torch_env(args.launcher)  # slurm / mpi: RANK, LOCAL_RANK & co. before anything reads them
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    set_cpu_threads()
    cfg = Config.fromfile(config)
    check_cfg_options(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    apply_config_rules(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(default_work_root, osp.splitext(osp.basename(config))[0])
    cfg.launcher = args.launcher
    prepare_distributed(cfg, args.launcher)
    return cfg


class NothingToResumeError(FileNotFoundError):
    """``--resume`` without a checkpoint path, but the work dir holds no checkpoint to resume from."""


def check_auto_resume(work_dir: str) -> str:
    """The checkpoint ``--resume`` (without a path) continues from: the one named by ``<work_dir>/last_checkpoint``.

    MMEngine trains from scratch when there is none, logging only "Auto resumed from the latest checkpoint None."

    Args:
        work_dir: the run's work dir.

    Returns:
        The checkpoint path.

    Raises:
        NothingToResumeError: the work dir has no ``last_checkpoint`` (no checkpoint was saved there yet).
    """
    from mmengine.runner import find_latest_checkpoint
    latest = find_latest_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if latest is None:
        raise NothingToResumeError(
            f'--resume: the work dir {work_dir!r} (absolute path: {osp.abspath(work_dir)}) holds no checkpoint to '
            'resume from (no last_checkpoint file; '
            f"{'the directory does not exist' if not osp.isdir(work_dir) else 'no epoch/iter checkpoint was saved'}"
            '). Drop --resume to train from scratch, give the checkpoint (--resume PATH), or give the --work-dir '
            'of the run to continue.')
    return latest


def enable_amp(cfg: Config) -> None:
    """Switch every ``OptimWrapper`` of ``cfg.optim_wrapper`` to ``AmpOptimWrapper`` (dynamic scale)."""
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a GPU: MMEngine\'s AmpOptimWrapper runs on CUDA/NPU/MLU devices only')
    wrappers = [cfg.optim_wrapper]
    if cfg.optim_wrapper.get('constructor') or 'optimizer' not in cfg.optim_wrapper:
        # one wrapper per sub-model (e.g. OptimWrapperDict for several students)
        wrappers = [v for k, v in cfg.optim_wrapper.items() if isinstance(v, dict) and 'optimizer' in v]
    for wrapper in wrappers:
        kind = wrapper.get('type', 'OptimWrapper')
        if kind == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.', logger='current', level=logging.WARNING)
        elif kind != 'OptimWrapper':
            raise ValueError(f'--amp works with OptimWrapper, but the config uses {kind}')
        else:
            wrapper['type'] = 'AmpOptimWrapper'
            wrapper['loss_scale'] = 'dynamic'


def parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` with ``parser`` (split out so tools are testable in-process)."""
    return parser.parse_args(argv)
