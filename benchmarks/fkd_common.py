"""Pieces shared by the FKD benchmarks (fkd_speed.py on the digits, fkd_jpeg.py on ImageNet-sized JPEGs).

A :class:`Trainer` is one training mode (a model config and its train dataloader, built by the real
MMEngine/MMRazor registries); :func:`compare` times several modes in alternating rounds, each round with
a fresh dataloader iterator and a warm-up, so the machine's drifting load hits every mode alike.
"""
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.registry import MODELS  # noqa: E402


def random_checkpoint(model_cfg: dict, path: str, seed: int = 0) -> str:
    """Save a model with fixed random weights as an MMEngine checkpoint (weights do not change speed)."""
    torch.manual_seed(seed)
    torch.save(dict(state_dict=MODELS.build(model_cfg).state_dict(), meta={}), path)
    return path


@torch.no_grad()
def calibrated_checkpoint(model_cfg: dict, images: np.ndarray, path: str, logit_std: float, seed: int = 0) -> str:
    """Save a random-weight classifier that answers like a trained one, as an MMEngine checkpoint.

    BN statistics are calibrated on ``images`` and the head is scaled so the logits spread with std
    ``logit_std`` over the classes. Random weights alone give near-uniform probabilities, against which
    every precision looks exact.

    Args:
        model_cfg: an mmpretrain classifier config (with a ``data_preprocessor`` and ``head.fc``).
        images: (N, H, W, 3) uint8 calibration images in the dataset's channel order.
        path: where the checkpoint goes.
        logit_std: target mean (over images) std (over classes) of the logits.
        seed: weight seed.

    Returns:
        ``path``.
    """
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    batch = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    inputs = model.data_preprocessor(dict(inputs=batch, data_samples=None), False)['inputs']
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batch
    model.train()(inputs, mode='tensor')
    logits = model.eval()(inputs, mode='tensor')
    model.head.fc.weight.mul_(logit_std / logits.std(dim=1).mean())
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path


class Trainer:
    """One mode: the model of ``config`` and its train dataloader, timed over ``iters`` steps at a time.

    Args:
        config: a config file or a :class:`Config` with ``model`` and ``train_dataloader``.
        options: ``merge_from_dict`` overrides.
        device: where the model trains (the data preprocessor moves each batch there).
    """

    def __init__(self, config: Union[str, Config], options: Optional[dict] = None, device: str = 'cpu') -> None:
        cfg = Config.fromfile(config) if isinstance(config, str) else config
        cfg.merge_from_dict(options or {})
        init_default_scope(cfg.get('default_scope', 'mmrazor'))
        self.model = MODELS.build(cfg.model.to_dict()).to(device)
        self.model.train()  # (SingleTeacherDistill.train returns None)
        self.wrapper = OptimWrapper(torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9))
        self.loader = Runner.build_dataloader(cfg.train_dataloader.to_dict(), seed=0)
        self.batches = iter(())

    def restart(self) -> None:
        """Drop the current loader iterator (its worker processes exit); the next step starts a fresh one."""
        self.batches = iter(())

    def next_batch(self) -> dict:
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self, batch: dict) -> None:
        self.model.train_step(batch, optim_wrapper=self.wrapper)

    def cpu_seconds(self) -> float:
        """CPU seconds used so far by this process and the current loader's worker processes."""
        workers = getattr(self.batches, '_workers', [])  # torch's multi-process loader iterator
        return time.process_time() + sum(process_cpu_seconds(w.pid) for w in workers)

    def measure(self, iters: int) -> Tuple[float, float]:
        """Over ``iters`` train steps, data loading included: samples (crops) per second of wall time, and CPU
        seconds per sample of this process and its loader workers (on a shared machine the load-independent
        figure: it does not count the time other programs hold the cores)."""
        n, start, cpu = 0, time.perf_counter(), self.cpu_seconds()
        for _ in range(iters):
            batch = self.next_batch()
            self.step(batch)
            n += len(batch['inputs'])
        return n / (time.perf_counter() - start), (self.cpu_seconds() - cpu) / n

    def step_seconds_per_sample(self, reps: int, clock: Callable[[], float] = time.perf_counter) -> float:
        """Seconds (of ``clock``) per sample of the train step alone: median over ``reps`` steps of one batch."""
        batch = self.next_batch()
        self.restart()  # no worker pre-fetches while the step is timed
        self.step(batch)
        times = []
        for _ in range(reps):
            start = clock()
            self.step(batch)
            times.append(clock() - start)
        return float(np.median(times)) / len(batch['inputs'])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; NaN where unavailable)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return float('nan')


def compare(trainers: Dict[str, Trainer], iters: int, rounds: int,
            warmup: int = 2) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Median samples/s and CPU seconds per sample per mode over ``rounds`` rounds that alternate the modes.

    Each mode, each round: a fresh loader iterator (no worker of another mode runs meanwhile),
    ``warmup`` untimed steps (worker start-up, pre-fetch), then ``iters`` timed steps.

    Returns:
        ({mode: samples/s}, {mode: CPU seconds per sample}).
    """
    rates, cpu = {name: [] for name in trainers}, {name: [] for name in trainers}
    for _ in range(rounds):
        for name, t in trainers.items():
            t.restart()
            t.measure(warmup)
            rate, cpu_per_sample = t.measure(iters)
            rates[name].append(rate)
            cpu[name].append(cpu_per_sample)
            t.restart()
    return ({name: float(np.median(r)) for name, r in rates.items()},
            {name: float(np.median(c)) for name, c in cpu.items()})
