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


@pytest.mark.parametrize('path', SEARCHES, ids=[osp.basename(p) for p in SEARCHES])
def test_search_config_targets_a_searchable_task_with_a_valid_space(path):
    from mmkd_ext.kd_zero.genome import SearchSpace
    from mmkd_ext.kd_zero.task_outputs import SEARCHABLE_TASKS, infer_task
    cfg = Config.fromfile(path)
    base = Config.fromfile(cfg.base_config)
    assert infer_task(base, cfg.proxy.get('task')) in SEARCHABLE_TASKS
    space = SearchSpace.from_cfg(cfg.get('search_space'))
    assert set(space.knowledge) <= set(base.kd_zero_sources)  # every searched knowledge has its modules


def test_imagenet_subset_files_are_disjoint_per_class_and_keep_the_1k_labels(tmp_path):
    from mmkd_ext.kd_zero.imagenet_subset import write_subset
    for c in range(5):  # a fake train/ tree: 5 classes x 12 images
        folder = tmp_path / 'train' / f'n0{c}'
        folder.mkdir(parents=True)
        for i in range(12):
            (folder / f'n0{c}_{i}.JPEG').write_bytes(b'')
    train, fitness = write_subset(str(tmp_path), num_classes=3, per_class=8, fitness_per_class=2, seed=1)
    rows = {name: [line.split() for line in open(p)] for name, p in (('train', train), ('fitness', fitness))}
    assert len(rows['train']) == 24 and len(rows['fitness']) == 6
    assert not {r[0] for r in rows['train']} & {r[0] for r in rows['fitness']}
    assert {r[1] for r in rows['train']} == {r[1] for r in rows['fitness']} and len({r[1] for r in rows['train']}) == 3
    assert all(r[0].startswith(f'n0{r[1]}/') for r in rows['train'] + rows['fitness'])  # folder index = 1k label
    with pytest.raises(ValueError, match='class 0 has 12 images, 13 needed'):
        write_subset(str(tmp_path), num_classes=5, per_class=12, fitness_per_class=1)
