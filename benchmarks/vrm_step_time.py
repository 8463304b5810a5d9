"""Cost of a VRM training step vs a vanilla KD step on the same pair (digits, resnet20 -> resnet8, batch 32).

    python benchmarks/vrm_step_time.py [--steps 10] [--threads 1]

Both configs are built through the MMEngine Runner (teacher randomly initialised: the cost does not depend on
its weights). Per config: median time of ``model.train_step`` (preprocess, teacher and student forward, losses,
backward, SGD update) over ``--steps`` steps after two warm-up steps, the median time to load one batch (the VRM
pipeline adds RandAugment for the virtual view), and the peak CPU memory allocated during one train step
(PyTorch profiler memory events, as in benchmarks/vrm_loss.py). VRM forwards 2B images through both networks.
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import time

import torch
from mmengine.config import Config
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from vrm_loss import peak_bytes  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.demo_data import make_digits  # noqa: E402

CONFIGS = {
    'vanilla KD (KLDivergence, tau=4)': 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py',
    'VRM (ISV + ICV, two views)': 'configs/vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py',
}


def build(path: str, work_dir: str):
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = None
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    return runner, runner.build_optim_wrapper(cfg.optim_wrapper), runner.build_dataloader(cfg.train_dataloader)


def measure(path: str, steps: int, work_dir: str) -> tuple:
    runner, optim_wrapper, loader = build(path, work_dir)
    model = runner.model
    model.train()
    batches, load_times = [], []
    iterator = iter(loader)
    for _ in range(min(steps + 2, len(loader))):
        start = time.perf_counter()
        batches.append(next(iterator))
        load_times.append(time.perf_counter() - start)
    step_times = []
    for i in range(steps + 2):
        batch = batches[i % len(batches)]
        start = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        step_times.append(time.perf_counter() - start)
    peak = peak_bytes(lambda: model.train_step(batches[0], optim_wrapper))
    return statistics.median(step_times[2:]) * 1e3, statistics.median(load_times) * 1e3, peak / 2**20


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--work-dir', default='work_dirs/bench_vrm_step')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    make_digits('data/demo/digits')
    results = {name: measure(path, args.steps, args.work_dir) for name, path in CONFIGS.items()}
    base = next(iter(results.values()))
    print('| config | train step ms | batch load ms | peak MiB per step | step vs KD |')
    print('|---|---|---|---|---|')
    for name, (step_ms, load_ms, mib) in results.items():
        print(f'| {name} | {step_ms:.1f} | {load_ms:.1f} | {mib:.1f} | {step_ms / base[0]:.2f}x |')


if __name__ == '__main__':
    main()
