"""VRM loss cost: direct (reference) vs memory-lean (Gram) implementation vs MMRazor's KLDivergence.

    python benchmarks/vrm_loss.py [--sizes 64x100 256x100 256x1000] [--reps 3] [--threads 1]

The direct path at (256, 1000) takes about a minute per pass and 6.4 GB on one CPU core (the whole run ~4 min);
``--sizes 64x100 256x100`` takes seconds.

For each (B, C) the inputs are (2B, C) student and teacher logits ([real; virtual] views), float32, CPU.
Reported per implementation: forward+backward wall time (median of ``--reps`` after one warm-up) and peak
memory of one forward+backward, measured with the PyTorch profiler (``profile_memory=True``): the CPU
allocator's [memory] events (size of every allocation and free) are replayed in time order and the maximum
of the running sum is the peak of bytes allocated during the call (inputs created before it excluded).
KLDivergence gets the same (2B, C) logits.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.registry import MODELS  # noqa: E402

SLOW_S = 5.0


def peak_bytes(fn) -> int:
    """Peak of live CPU bytes allocated during ``fn()``.

    The PyTorch profiler (``profile_memory=True``) records every CPU allocation and free as a ``[memory]``
    event with its size; replaying them in time order gives the live-bytes curve and its maximum.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]')
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def fwd_bwd(loss_module, preds_S: torch.Tensor, preds_T: torch.Tensor):
    """One forward + backward of a (dict or tensor) loss; returns a closure."""
    def run():
        s = preds_S.detach().requires_grad_()
        out = loss_module(s, preds_T)
        total = sum(out.values()) if isinstance(out, dict) else out
        total.backward()
    return run


def losses(num_classes: int) -> dict:
    common = dict(type='VRMLoss', num_classes=num_classes, adaptor=False)
    return {
        'VRM reference (direct)': MODELS.build(dict(common, implementation='reference')),
        'VRM lean (Gram)': MODELS.build(dict(common, implementation='gram')),
        'MMRazor KLDivergence': MODELS.build(dict(type='KLDivergence', tau=4)),
    }


def bench(batch: int, num_classes: int, reps: int) -> list:
    torch.manual_seed(0)
    s, t = torch.randn(2 * batch, num_classes), torch.randn(2 * batch, num_classes)
    rows = []
    for name, module in losses(num_classes).items():
        run = fwd_bwd(module, s, t)
        start = time.perf_counter()
        run()  # warm-up; a pass slower than SLOW_S (the direct path at 256x1000: ~1 min) is timed once only
        times = [time.perf_counter() - start]
        for _ in range(reps if times[0] < SLOW_S else 0):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        times = times[1:] or times
        rows.append((name, statistics.median(times) * 1e3, peak_bytes(run) / 2**20))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', nargs='+', default=['64x100', '256x100', '256x1000'])
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print('| B | C | implementation | fwd+bwd ms | peak MiB | vs reference (time / memory) |')
    print('|---|---|---|---|---|---|')
    for size in args.sizes:
        batch, num_classes = (int(v) for v in size.split('x'))
        rows = bench(batch, num_classes, args.reps)
        ref_ms, ref_mib = rows[0][1], rows[0][2]
        for name, ms, mib in rows:
            print(f'| {batch} | {num_classes} | {name} | {ms:.1f} | {mib:.1f} | '
                  f'{ms / ref_ms:.2f}x / {mib / max(ref_mib, 1e-9):.3f}x |', flush=True)


if __name__ == '__main__':
    main()
