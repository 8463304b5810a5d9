"""Rank bodies for tests/amd/test_distributed.py that run in *spawned* gloo processes (no pytest imports here).

Spawned, not forked (tests/gloo_ranks.py forks): a fork after torch has started its OpenMP threads can hang.
"""
import os.path as osp

import torch
import torch.multiprocessing as mp
from gloo_ranks import _entry, free_port
from mmengine.evaluator import Evaluator
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from mmkd_ext.amd.algorithm import AMDDistill
from mmkd_ext.amd.bn_stats import batch_norms
from mmkd_ext.amd.loops import AMDCandidatesValLoop
from mmkd_ext.amd.wrapper import AMDDistributedDataParallel

INPUT = (3, 32, 32)
SCALES = [0.8, 0.5]
PRE = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)
RESNET8 = dict(_scope_='mmpretrain', type='ImageClassifier', backbone=dict(type='CIFARResNet', arch='resnet8'),
               neck=dict(type='GlobalAveragePooling'), data_preprocessor=PRE,
               head=dict(type='LinearClsHead', num_classes=10, in_channels=64))


def spawn_on_gloo_ranks(fn, world: int, *args) -> None:
    """``fn(rank, *args)`` in ``world`` spawned processes joined in a gloo group (see tests/gloo_ranks.py)."""
    mp.start_processes(_entry, args=(world, free_port(), fn, args), nprocs=world, join=True, start_method='spawn')


def batch(seed: int, n: int = 4) -> dict:
    """``n`` random uint8 images (labels 0..n-1) drawn with ``seed``: each rank its own."""
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randint(0, 256, INPUT, generator=g, dtype=torch.uint8) for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i) for i in range(n)])


class _Batches(list):
    dataset = list(range(4))  # what ValLoop reads (len, no metainfo)


class StatsRecorder(Evaluator):
    """An evaluator that records the live BN running statistics each candidate is validated with."""

    def __init__(self, algo: AMDDistill) -> None:
        super().__init__(metrics=[])
        self.algo, self.seen = algo, {}

    def process(self, data_samples, data_batch=None) -> None:
        pass

    def evaluate(self, size: int) -> dict:
        self.seen[self.algo.bn_bank.current] = {
            f'{n}.{s}': getattr(bn, s).detach().clone() for n, bn in batch_norms(self.algo.architecture)
            for s in ('running_mean', 'running_var')}
        return {'accuracy/top1': 0.0}


class _Runner:
    """What AMDCandidatesValLoop uses of MMEngine's Runner."""

    def __init__(self, model) -> None:
        self.model = model

    def call_hook(self, name: str, **kwargs) -> None:
        pass


def train_then_validate(rank: int, out: str) -> None:
    """One AMD step under DDP on this rank's own images, then AMDCandidatesValLoop; saves the statistics."""
    torch.manual_seed(0)
    algo = AMDDistill(architecture=RESNET8, teacher=RESNET8, teacher_ckpt=None, student_ckpt=None, scales=SCALES,
                      pruner=dict(input_shape=INPUT), feature_modules=['backbone.layer3']).train()
    ddp = AMDDistributedDataParallel(module=algo, device_ids=None)
    ddp.train_step(batch(10 + rank), OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=0.1)))
    trained = {s: {k: v['running_mean'].clone() for k, v in stats.items()} for s, stats in algo.bn_stats().items()}
    recorder = StatsRecorder(algo)
    AMDCandidatesValLoop(_Runner(ddp), _Batches([batch(99, 2)]), recorder).run()
    torch.save(dict(trained=trained, validated=recorder.seen), osp.join(out, f'bn_rank{rank}.pth'))


def sampled_steps(rank: int, out: str, steps: int) -> None:
    """``steps`` AMD steps under DDP with ``candidates_per_step='single'``; saves the candidates each step trained."""
    torch.manual_seed(0)
    algo = AMDDistill(architecture=RESNET8, teacher=RESNET8, teacher_ckpt=None, student_ckpt=None,
                      scales=[0.9, 0.7, 0.5, 0.3], pruner=dict(input_shape=INPUT), feature_modules=['backbone.layer3'],
                      candidates_per_step=dict(mode='single', seed=5)).train()
    trained, set_scale = [], algo.set_scale
    algo.set_scale = lambda s: (trained.append(s), set_scale(s))  # records every candidate switch
    ddp = AMDDistributedDataParallel(module=algo, device_ids=None)
    wrapper = OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=0.1))
    per_step = []
    for step in range(steps):
        trained.clear()
        ddp.train_step(batch(10 * step + rank), wrapper)
        per_step.append([s for s in trained if s is not None])
    params = {k: v.detach().clone() for k, v in algo.architecture.named_parameters()}
    torch.save(dict(subsets=per_step, params=params), osp.join(out, f'sampled_rank{rank}.pth'))
