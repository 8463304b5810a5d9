"""Every config of the repository loads (bases resolve, no duplicate keys) and names a model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from conftest import ROOT

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if f'{osp.sep}_base_{osp.sep}' not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, osp.join(ROOT, 'configs')) for p in CONFIGS])
def test_config_loads(path):
    cfg = Config.fromfile(path)
    assert 'model' in cfg or 'teachers' in cfg, f'{path} defines neither a model nor label-generation teachers'
