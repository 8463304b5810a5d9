"""Every KD-Zero config parses and its distillation model builds (real-data configs included)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmkd_ext.kd_zero.genome import Genome
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'kd_zero', 'kd_zero_*.py')))
SEARCHES = sorted(glob.glob(osp.join(ROOT, 'configs', 'kd_zero', 'search_*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_distillation_config_builds_with_the_genome_loss(path):
    cfg = Config.fromfile(path)
    cfg.model.teacher_ckpt = None
    init_default_scope('mmrazor')
    model = MODELS.build(cfg.model)
    losses = model.distiller.distill_losses
    assert losses and all(type(loss).__name__ == 'KDZeroLoss' for loss in losses.values())
    assert all(loss.genome == Genome.from_dict(cfg.kd_zero_genome) for loss in losses.values())


@pytest.mark.parametrize('path', SEARCHES, ids=[osp.basename(p) for p in SEARCHES])
def test_search_config_points_at_a_distillation_config_with_knowledge_sources(path):
    cfg = Config.fromfile(path)
    base = Config.fromfile(cfg.base_config)
    assert {'feature', 'logits'} <= set(base.kd_zero_sources)
    assert 0 < cfg.proxy.fraction <= 1
