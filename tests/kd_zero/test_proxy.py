"""Real MMRazor proxy runs (MMEngine Runner) of candidate distillers on a slice of the digits pair."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmkd_ext.kd_zero.genome import Genome
from mmkd_ext.kd_zero.proxy import ProxyEvaluator, distiller_cfg
from mmkd_ext.kd_zero.report import write_best_config
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, 'configs', 'kd_zero', 'kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py')
PIPE = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
SMALL = dict(  # 2 iterations per epoch, no teacher checkpoint needed
    model=dict(teacher_ckpt=None),
    train_dataloader=dict(dataset=dict(indices=64)))
FITNESS_LOADER = dict(batch_size=40, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='CustomDataset', data_root='data/demo/digits', data_prefix='val',
                                   pipeline=PIPE, indices=40, _scope_='mmpretrain'))


def evaluator(tmp_path, **kwargs):
    args = dict(fraction=1 / 30, seed=0, fitness_dataloader=FITNESS_LOADER, fitness_samples=40, min_accuracy=0.0,
                cfg_options=SMALL, rejection=dict())
    args.update(kwargs)
    return ProxyEvaluator(BASE, str(tmp_path), **args)


@pytest.mark.parametrize('knowledge', ['feature', 'embedding', 'logits'])
def test_distiller_cfg_builds_a_single_teacher_distill_for_each_knowledge(knowledge, digits_root):
    cfg = Config.fromfile(BASE)
    genome = Genome(knowledge, 'no', 'no', 'no', 'l2', 1.0, 'focal', 4.0)
    cfg.model.teacher_ckpt = None
    cfg.model.distiller = distiller_cfg(genome, cfg.kd_zero_sources, align_always=True)
    model = MODELS.build(cfg.model)
    assert model.distiller.distill_losses['loss_kdzero'].genome == genome
    assert ('kd_align' in model.distiller.connectors) == (knowledge != 'logits')  # student 32 -> teacher 64 wide


def test_loss_rejection_stops_the_proxy_run_at_the_first_iteration(tmp_path, digits_root):
    genome = Genome('logits', 'no', 'no', 'no', 'l2', 100.0, 'no', 1.0)
    result = evaluator(tmp_path, rejection=dict(max_kd=1e-6))(genome)
    assert result.status == 'rejected' and 'exploding' in result.reason
    assert result.iters == 1 and result.planned_iters == 2


def test_best_genome_is_written_as_a_config_that_builds(tmp_path):
    genome = Genome('embedding', 'catt', 'tanh', 'norm_C', 'cosine', 5.0, 'conf', 8.0)
    base = Config.fromfile(BASE)
    path = write_best_config(genome, BASE, base.kd_zero_sources, osp.join(str(tmp_path), 'best.py'))
    cfg = Config.fromfile(path)
    assert cfg.kd_zero_genome == genome.to_dict()
    cfg.model.teacher_ckpt = None
    model = MODELS.build(cfg.model)
    assert model.distiller.distill_losses['loss_kdzero'].genome == genome
    assert set(model.distiller.student_recorders.recorders) == {'knowledge', 'logits', 'labels'}


def test_schedule_is_compressed_to_the_proxy_fraction():
    from mmkd_ext.kd_zero.proxy import compress_schedule
    scheds = [dict(type='LinearLR', begin=0, end=5, by_epoch=True),
              dict(type='MultiStepLR', milestones=[100, 150], by_epoch=True),
              dict(type='CosineAnnealingLR', T_max=240, by_epoch=True)]
    out = compress_schedule(scheds, 12 / 240)  # [P] 5% of 240 epochs; METHODS.md 2.5: milestones 5 and 8
    assert out[0]['begin'] == 0 and out[0]['end'] == 1
    assert out[1]['milestones'] == [5, 8]
    assert out[2]['T_max'] == 12
    assert scheds[1]['milestones'] == [100, 150]  # input untouched


def test_best_config_still_loads_after_its_folder_is_moved(tmp_path):
    import shutil
    genome = Genome('logits', 'no', 'no', 'softmax_C', 'kl', 1.0, 'no', 4.0)
    base = Config.fromfile(BASE)
    os_dir = tmp_path / 'search' / 'deep'
    os_dir.mkdir(parents=True)
    write_best_config(genome, BASE, base.kd_zero_sources, str(os_dir / 'best.py'))
    shutil.move(str(tmp_path / 'search'), str(tmp_path / 'moved'))
    assert Config.fromfile(str(tmp_path / 'moved' / 'deep' / 'best.py')).kd_zero_genome == genome.to_dict()
