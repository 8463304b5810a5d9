"""VRMLoss(relation_scope=...) under 2-process gloo DDP: 'global' relations are those of the whole batch."""
import os.path as osp

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gloo_ranks import fork_safe_start_method
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mmkd_ext.vrm.losses import VRMLoss

B, D, C = 8, 6, 5
SPLIT = (5, 3)  # samples per rank: uneven, like a last smaller batch


class Student(nn.Module):
    """A linear student and the VRM loss (its adaptor has parameters too), seeded identically everywhere."""

    def __init__(self, scope: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(D, C)
        self.vrm = VRMLoss(num_classes=C, percentile=75.0, relation_scope=scope)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return sum(self.vrm(self.fc(x), t).values())


def batch():
    """(2B, D) inputs and (2B, C) teacher logits laid out [real; virtual]."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(2 * B, D, generator=g), torch.randn(2 * B, C, generator=g) * 3


def rows_of(rank: int) -> list:
    """This rank's real rows and their virtual twins, as the two-view pipeline lays them out."""
    start = sum(SPLIT[:rank])
    real = list(range(start, start + SPLIT[rank]))
    return real + [B + i for i in real]


def grads(model: nn.Module) -> dict:
    """Parameter gradients by name (the adaptor's first bias, followed by BN, has a float-noise gradient ~1e-6)."""
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    x, t = batch()
    rows = rows_of(rank)
    out = {}
    for scope in ('global', 'local'):
        model = DistributedDataParallel(Student(scope))
        loss = model(x[rows], t[rows])
        loss.backward()
        out[scope] = dict(loss=loss.detach(), grads=grads(model.module))
    torch.save(out, osp.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def single_process(scope: str, rows: list) -> dict:
    x, t = batch()
    model = Student(scope)
    loss = model(x[rows], t[rows])
    loss.backward()
    return dict(loss=loss.detach(), grads=grads(model))


def test_global_relations_equal_the_one_process_relations_of_the_whole_batch(tmp_path):
    # not a fork of this process: one after torch's OpenMP threads started hangs (issue 24, item 11)
    mp.start_processes(worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2, join=True,
                       start_method=fork_safe_start_method())
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in (0, 1)]
    whole = single_process('global', list(range(2 * B)))
    for out in ranks:  # every rank computes the loss of the whole batch; DDP's average is its gradient
        assert torch.allclose(out['global']['loss'], whole['loss'], rtol=1e-5, atol=1e-6)
        for name, grad in whole['grads'].items():
            assert torch.allclose(out['global']['grads'][name], grad, rtol=1e-4, atol=5e-5), name
    # 'local': each rank relates its own samples only; DDP averages the two local gradients
    local = [single_process('local', rows_of(r)) for r in (0, 1)]
    for r in (0, 1):
        assert torch.allclose(ranks[r]['local']['loss'], local[r]['loss'], rtol=1e-5, atol=1e-6)
    for name in whole['grads']:
        mean = (local[0]['grads'][name] + local[1]['grads'][name]) / 2
        assert torch.allclose(ranks[0]['local']['grads'][name], mean, rtol=1e-4, atol=5e-5), name
    assert not torch.allclose(ranks[0]['local']['loss'], whole['loss'])  # the two scopes do differ


def test_unknown_relation_scope_is_refused():
    import pytest
    with pytest.raises(ValueError, match="relation_scope='batch'"):
        VRMLoss(num_classes=C, relation_scope='batch')
