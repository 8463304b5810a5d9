"""Real MMRazor proxy runs (MMEngine Runner) of candidate distillers on a slice of the digits pair."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import Runner

from mmkd_ext.kd_zero.genome import Genome
from mmkd_ext.kd_zero.proxy import ProxyEvaluator, compress_schedule, distiller_cfg, proxy_config
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
    scheds = [dict(type='LinearLR', begin=0, end=5, by_epoch=True),
              dict(type='MultiStepLR', milestones=[100, 150], by_epoch=True),
              dict(type='CosineAnnealingLR', T_max=240, by_epoch=True)]
    out = compress_schedule(scheds, 12 / 240)  # [P] 5% of 240 epochs; METHODS.md 2.5: milestones 5 and 8
    assert out[0]['begin'] == 0 and out[0]['end'] == 1
    assert out[1]['milestones'] == [5, 8]
    assert out[2]['T_max'] == 12
    assert scheds[1]['milestones'] == [100, 150]  # input untouched


def test_proxy_rejection_hook_builds_under_a_non_mmrazor_default_scope():
    """The Cityscapes search's base config is mmseg-scoped; an unscoped hook type is not in mmseg's HOOKS."""
    from mmengine.registry import HOOKS, DefaultScope

    from mmkd_ext.kd_zero.proxy import proxy_config
    base = Config.fromfile(BASE)
    base.default_scope = 'mmseg'
    cfg = proxy_config(base, Genome('logits', 'no', 'no', 'softmax_C', 'kl', 1.0, 'no', 4.0), 0.1, '/tmp/p', 0,
                       rejection=dict())
    with DefaultScope.overwrite_default_scope('mmseg'):
        hook = HOOKS.build(cfg.custom_hooks[-1])
    assert type(hook).__name__ == 'KDZeroRejectionHook'


def test_proxy_scales_the_lr_linearly_to_the_batch_it_really_uses(tmp_path, digits_root):
    """Batch 16 in one process, lr 0.05 tuned for 32: the proxy trains at 0.05 x 16/32 = 0.025 at every step."""
    small = dict(SMALL, train_dataloader=dict(batch_size=16, dataset=dict(indices=64)))  # 4 iterations, 1 epoch
    result = evaluator(tmp_path, cfg_options=small, base_batch_size=32)(Genome('logits', 'no', 'no', 'no', 'kl',
                                                                               1.0, 'no', 4.0))
    assert result.status == 'ok' and result.iters == 4
    lrs = MessageHub.get_current_instance().get_scalar('train/lr').data[0]
    assert np.allclose(lrs, [0.025] * 4)


@pytest.mark.parametrize('search, batch, base, lr', [
    ('search_kd_zero_resnet34_resnet18_in1k-subset.py', 32, 256, 0.1 * 32 / 256),
    ('search_kd_zero_deeplabv3-r101_deeplabv3-r18_cityscapes.py', 2, 8, 0.01 * 2 / 8),
    ('search_kd_zero_resnet110_resnet20_cifar100.py', 64, 64, 0.1)])
def test_search_configs_proxies_train_at_their_batch_with_the_scaled_lr(tmp_path, search, batch, base, lr):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'kd_zero', search))
    proxy = ProxyEvaluator(cfg.base_config, str(tmp_path), **cfg.proxy)
    assert (proxy.batch_size, proxy.base_batch_size) == (batch, base)
    run = proxy_config(proxy.base, Genome('logits', 'no', 'no', 'no', 'kl', 1.0, 'no', 4.0), 0.05, str(tmp_path), 0,
                       base_batch_size=proxy.base_batch_size)
    scale = run.train_dataloader.batch_size / run.auto_scale_lr.base_batch_size
    assert run.auto_scale_lr.enable and np.isclose(run.optim_wrapper.optimizer.lr * scale, lr)


def test_multi_gpu_base_config_without_a_base_batch_is_refused(tmp_path):
    search = 'search_kd_zero_deeplabv3-r101_deeplabv3-r18_cityscapes.py'
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'kd_zero', search))
    cfg.proxy.pop('base_batch_size')
    with pytest.raises(ValueError, match='batch of 8'):
        ProxyEvaluator(cfg.base_config, str(tmp_path), **cfg.proxy)


def test_a_single_scheduler_dict_is_compressed_like_a_list():
    """mmpretrain's ImageNet schedule is one MultiStepLR dict (30/60/90 of 100 epochs); 5%: 2/3/4 of 5."""
    one = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
    assert compress_schedule(one, 0.05) == [dict(one, milestones=[2, 3, 4])]


def test_best_config_still_loads_after_its_folder_is_moved(tmp_path):
    import shutil
    genome = Genome('logits', 'no', 'no', 'softmax_C', 'kl', 1.0, 'no', 4.0)
    base = Config.fromfile(BASE)
    os_dir = tmp_path / 'search' / 'deep'
    os_dir.mkdir(parents=True)
    write_best_config(genome, BASE, base.kd_zero_sources, str(os_dir / 'best.py'))
    shutil.move(str(tmp_path / 'search'), str(tmp_path / 'moved'))
    assert Config.fromfile(str(tmp_path / 'moved' / 'deep' / 'best.py')).kd_zero_genome == genome.to_dict()


def test_held_out_fitness_split_is_the_shared_one_and_not_trained_on(tmp_path, digits_root):
    """held_out_every=10: proxies train on 58 of the 64 images, the fitness uses the other 6 (mmkd_ext/held_out.py)."""
    proxy = evaluator(tmp_path, fitness_dataloader=None, fitness_samples=6, held_out_every=10, rejection=None)
    train = Runner.build_dataloader(proxy.base.train_dataloader).dataset
    held = Runner.build_dataloader(proxy.fitness_dataloader).dataset
    assert (len(train), len(held)) == (58, 6)
    assert not {train.dataset.get_data_info(i)['img_path'] for i in train.indices} & \
        {held.dataset.get_data_info(i)['img_path'] for i in held.indices}
    assert held.dataset.pipeline.transforms[-1].__class__.__name__ == 'PackInputs' and \
        len(held.dataset.pipeline.transforms) == 2  # the val pipeline: no random crop
    result = proxy(Genome('logits', 'no', 'no', 'no', 'kl', 1.0, 'no', 4.0))
    assert result.status == 'ok' and result.iters == 2, result.reason  # 58 images at batch 32: 2 iterations


def test_each_rank_trains_its_proxies_in_its_own_folder(tmp_path, digits_root, monkeypatch):
    from mmkd_ext.kd_zero import proxy as proxy_module
    monkeypatch.setattr(proxy_module, 'get_rank', lambda: 1)  # read when the evaluator is built
    genome = Genome('logits', 'no', 'no', 'no', 'l2', 100.0, 'no', 1.0)
    evaluator(tmp_path, rejection=dict(max_kd=1e-6))(genome)
    assert sorted(os.listdir(tmp_path)) == ['proxy_rank1']  # not a proxy/ folder shared by every rank
