"""Every FKD config loads, and its student (or label teacher config) is well-formed."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmkd_ext.fkd.generation import GenerationSettings
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'fkd', '*.py')))


@pytest.mark.parametrize('path', [p for p in CONFIGS if not osp.basename(p).startswith('labels_')],
                         ids=osp.basename)
def test_training_config_builds_a_teacher_free_model(path):
    cfg = Config.fromfile(path)
    init_default_scope('mmrazor')
    model = MODELS.build(cfg.model.to_dict())
    assert cfg.train_cfg.type == 'FKDEpochBasedTrainLoop'
    assert cfg.train_dataloader.collate_fn.type == 'fkd_collate'
    assert cfg.train_cfg.max_epochs % cfg.train_dataloader.dataset.crops_per_image == 0
    assert type(getattr(model, 'teacher', None)).__name__ in ('NoneType', 'StoredTeacher')


@pytest.mark.parametrize('path', [p for p in CONFIGS if osp.basename(p).startswith('labels_')], ids=osp.basename)
def test_label_config_has_valid_generation_settings(path):
    cfg = Config.fromfile(path)
    settings = GenerationSettings.from_cfg(cfg.fkd_generation)
    assert settings.num_crops >= 1 and cfg.teachers and 'model' in cfg.teachers[0]
