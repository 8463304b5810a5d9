"""Every config of the repository loads (bases resolve, no duplicate keys) and names its job."""
import glob
import os.path as osp

import pytest
from conftest import ROOT
from mmengine.config import Config

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if f'{osp.sep}_base_{osp.sep}' not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS])
def test_config_loads(path):
    cfg = Config.fromfile(path)
    jobs = {'model', 'teachers', 'search'}  # training, FKD label generation, KD-Zero search
    assert jobs & set(cfg.keys()), f'{path} defines none of {sorted(jobs)}'
