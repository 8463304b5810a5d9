"""FKD fixtures: a (randomly initialised) resnet20 teacher checkpoint."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmkd_ext.registry import MODELS

LABEL_CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'fkd',
                        'labels_resnet20_m30-ms5_digits.py')


@pytest.fixture(scope='session')
def teacher_ckpt(tmp_path_factory, digits_root):
    """A resnet20 digits teacher with fixed random weights, saved as an MMEngine checkpoint."""
    cfg = Config.fromfile(LABEL_CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.teachers[0].model.to_dict())
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


@pytest.fixture(autouse=True)
def one_torch_thread(single_torch_thread):
    """Every FKD test runs with one intra-op thread (tests/conftest.py)."""
