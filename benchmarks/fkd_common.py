"""Pieces shared by the FKD benchmarks (fkd_speed.py on the digits, fkd_jpeg.py on ImageNet-sized JPEGs).

A :class:`Trainer` is one training mode (a model config and its train dataloader, built by the real
MMEngine/MMRazor registries); :func:`compare` times several modes in alternating rounds, each round with
a fresh dataloader iterator and a warm-up, so the machine's drifting load hits every mode alike.
"""
import os.path as osp
import sys
import time
from typing import Dict, Optional, Union

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

    def samples_per_s(self, iters: int) -> float:
        """Samples (crops) per second over ``iters`` train steps, data loading included."""
        n, start = 0, time.perf_counter()
        for _ in range(iters):
            batch = self.next_batch()
            self.step(batch)
            n += len(batch['inputs'])
        return n / (time.perf_counter() - start)

    def step_seconds_per_sample(self, reps: int) -> float:
        """Seconds per sample of the train step alone (one loaded batch, stepped ``reps`` times after one)."""
        batch = self.next_batch()
        self.restart()  # no worker pre-fetches while the step is timed
        self.step(batch)
        start = time.perf_counter()
        for _ in range(reps):
            self.step(batch)
        return (time.perf_counter() - start) / reps / len(batch['inputs'])


def compare(trainers: Dict[str, Trainer], iters: int, rounds: int, warmup: int = 2) -> Dict[str, float]:
    """Median samples/s per mode over ``rounds`` rounds that alternate the modes (machine load drifts).

    Each mode, each round: a fresh loader iterator (no worker of another mode runs meanwhile),
    ``warmup`` untimed steps (worker start-up, pre-fetch), then ``iters`` timed steps.
    """
    rates = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, t in trainers.items():
            t.restart()
            t.samples_per_s(warmup)
            rates[name].append(t.samples_per_s(iters))
            t.restart()
    return {name: sorted(r)[len(r) // 2] for name, r in rates.items()}
