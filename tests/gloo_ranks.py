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


def run_on_gloo_ranks(fn, world: int, *args) -> None:
    """Call ``fn(rank, *args)`` in ``world`` forked processes with RANK/WORLD_SIZE/LOCAL_RANK set.

    Forked, not spawned: the children inherit the imported modules (a spawned child re-imports mmpretrain,
    mmrazor and mmkd_ext, ~15 s each on a busy 2-core machine). A failure in any rank fails the caller.
    """
    mp.start_processes(_entry, args=(world, free_port(), fn, args), nprocs=world, join=True, start_method='fork')


def _entry(rank, world, port, fn, args):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        fn(rank, *args)
    finally:
        dist.destroy_process_group()
