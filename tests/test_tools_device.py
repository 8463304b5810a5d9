"""Every rank of the FKD label, KD-Zero search and AMD pipeline tools makes cuda:LOCAL_RANK its device.

The tools' heavy work is replaced by a recorder: what is checked is the launcher/device lines of each tool, on a
machine that pretends to have 2 GPUs (torch.cuda.set_device recorded instead of called).
"""
import os.path as osp
import runpy
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT, config_path
from gloo_ranks import free_port


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend this process sees 2 GPUs; returns the list of devices made current."""
    current = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'set_device', current.append)
    return current


def slurm_task(monkeypatch, local_rank):
    """The environment of srun task 0 of 1 with SLURM_LOCALID=local_rank (no torchrun variables)."""
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):  # restored after the test: the code under test sets them
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID=str(local_rank), SLURM_NODELIST='n1',
                           MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)


def run_tool(monkeypatch, tool, *args):
    import mmkd_ext.weight_sources as weight_sources
    # the tools' work is stubbed, so the teacher files their configs name are not needed (the pre-flight weight
    # check is tested in tests/test_weight_sources.py)
    monkeypatch.setattr(weight_sources, 'unavailable_weights', lambda cfg: [])
    monkeypatch.setattr(sys, 'argv', [tool, *args])
    return runpy.run_path(osp.join(ROOT, tool), run_name='__main__')


@pytest.mark.parametrize('local_rank', [0, 1])
def test_fkd_label_generation_uses_the_local_rank_gpu(monkeypatch, two_gpus, local_rank):
    import mmkd_ext.fkd.generation as generation
    calls = []
    monkeypatch.setattr(generation, 'generate_labels', lambda cfg, **kw: calls.append(
        (list(two_gpus), kw['rank'], kw['world_size'])) or SimpleNamespace(images=0, crops=0, seconds=0.0,
                                                                           crops_per_s=0.0))
    slurm_task(monkeypatch, local_rank)
    run_tool(monkeypatch, 'tools/fkd/generate_labels.py', config_path('fkd', 'labels_resnet20_m30-ms5_digits.py'),
             '--launcher', 'slurm')
    assert calls == [([torch.device('cuda', local_rank)], 0, 1)]  # the device is chosen before any teacher is built


def test_kd_zero_search_proxies_use_the_local_rank_gpu(monkeypatch, two_gpus, tmp_path):
    import mmkd_ext.kd_zero.search as search
    seen = []
    monkeypatch.setattr(search, 'search_from_config', lambda *a, **kw: seen.append(list(two_gpus)) or dict(
        claimed=0, waited=0.0, best=None))
    slurm_task(monkeypatch, 1)
    config = config_path('kd_zero', 'search_kd_zero_resnet20_resnet8x0.5_digits.py')
    run_tool(monkeypatch, 'tools/kd_zero/search.py', config, '--work-dir', str(tmp_path), '--launcher', 'slurm')
    assert seen == [[torch.device('cuda', 1)]]  # set before any proxy is built


def test_amd_pipeline_uses_the_local_rank_gpu_before_its_first_stage(monkeypatch, two_gpus, tmp_path):
    import mmkd_ext.amd.pipeline as pipeline
    seen = []

    class Recorder:
        def __init__(self, cfg, work_dir):
            pass

        def run(self, until=None):
            seen.append(list(two_gpus))
            return {}
    monkeypatch.setattr(pipeline, 'AMDPipeline', Recorder)
    slurm_task(monkeypatch, 1)
    run_tool(monkeypatch, 'tools/amd/run.py', config_path('amd', 'amd_resnet20_resnet20-p30_1xb32-6e_digits.py'),
             '--work-dir', str(tmp_path), '--launcher', 'slurm')
    assert seen == [[torch.device('cuda', 1)]]
