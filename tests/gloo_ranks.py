"""Run a test function in N fresh processes joined in a gloo process group (CPU DDP, no torchrun)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port() -> int:
    """A TCP port nobody listens on right now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# imported once by the fork server, so that the ranks it forks need not import them again
FORKSERVER_PRELOAD = ['torch', 'mmkd_ext', 'gloo_ranks']


def fork_safe_start_method() -> str:
    """``'forkserver'`` with mmkd_ext preloaded: the start method of every test that starts processes.

    A plain fork of the test process copies it after torch started its OpenMP threads (any earlier test ran a
    tensor op), and the child then waits forever in ``gomp_team_barrier_wait_end`` at its first parallel op (issue 24,
    item 11: ``pytest tests/vrm`` hung). The fork server is a fresh process that imports mmkd_ext once without
    running torch ops; the children it forks start with the imports done (a spawned child re-imports mmpretrain,
    mmrazor and mmkd_ext, ~15 s each on a busy 2-core machine).
    """
    mp.set_forkserver_preload(FORKSERVER_PRELOAD)  # takes effect when the server starts (once per test process)
    return 'forkserver'


def run_on_gloo_ranks(fn, world: int, *args) -> None:
    """Call ``fn(rank, *args)`` in ``world`` processes with RANK/WORLD_SIZE/LOCAL_RANK set.

    The processes come from :func:`fork_safe_start_method`; ``fn`` must be importable (a module-level function).
    A failure in any rank fails the caller.
    """
    mp.start_processes(_entry, args=(world, free_port(), fn, args), nprocs=world, join=True,
                       start_method=fork_safe_start_method())


def _entry(rank, world, port, fn, args):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()
