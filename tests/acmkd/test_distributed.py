"""ACMKD under 2 gloo processes: after the epoch-end averaging every rank holds the same BatchNorm statistics."""
from types import SimpleNamespace

import torch
from gloo_ranks import run_on_gloo_ranks
from mmengine.optim import build_optim_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from mmkd_ext.acmkd.hooks import ACMKDHook
from mmkd_ext.registry import MODELS

from .helpers import batch, tiny_cfg

OPTIM = dict(constructor='ACMKDOptimWrapperConstructor',
             optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))


def _bn_stats(model):
    return {n: torch.cat([m.running_mean, m.running_var]).clone() for n, m in model.named_modules()
            if isinstance(m, _BatchNorm)}


def _step_and_average(rank, out):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg()).train()
    model.train_step(batch(seed=rank), build_optim_wrapper(model, OPTIM))  # own data: own BN statistics
    before = _bn_stats(model)
    ACMKDHook(rank_by="val").after_train_epoch(SimpleNamespace(model=model))  # BN averaging alone
    torch.save(dict(before=before, after=_bn_stats(model)), f'{out}/rank{rank}.pth')


def test_bn_statistics_are_the_mean_over_ranks_after_the_epoch(tmp_path):
    run_on_gloo_ranks(_step_and_average, 2, str(tmp_path))
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    students = [n for n in r0['before'] if n.startswith('student_')]
    assert students and any(not torch.equal(r0['before'][n], r1['before'][n]) for n in students)
    for name in r0['before']:
        mean = (r0['before'][name].double() + r1['before'][name].double()) / 2
        assert torch.equal(r0['after'][name], r1['after'][name]), name
        assert torch.allclose(r0['after'][name].double(), mean, atol=1e-6), name
