"""KD-Zero search on segmentation (pixels as samples), end to end on the street-scenes demo, and the task dispatch
(detection is refused: the paper reuses the ImageNet-searched distiller on COCO)."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmkd_ext.kd_zero.genome import Genome
from mmkd_ext.kd_zero.proxy import ProxyEvaluator, proxy_config
from mmkd_ext.kd_zero.search import search_from_config
from mmkd_ext.kd_zero.task_outputs import IMAGENET_SEARCH_CONFIG, infer_task
from mmkd_ext.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KD_ZERO = osp.join(ROOT, 'configs', 'kd_zero')
SEG_SEARCH = osp.join(KD_ZERO, 'search_kd_zero_pspnet-r18_fcn-r18-w32_cityscapes-demo.py')
COCO = osp.join(KD_ZERO, 'kd_zero_fpn_retinanet-x101-64x4d_retinanet-r50_8xb2-2x_coco.py')
DIGITS = osp.join(KD_ZERO, 'kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py')


@pytest.fixture(scope='module')
def seg_teacher_ckpt(tmp_path_factory, cityscapes_root):
    """The demo teacher (PSPNet-R18), randomly initialised, saved in MMEngine's checkpoint format."""
    base = Config.fromfile(Config.fromfile(SEG_SEARCH).base_config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    teacher = MODELS.build(base.model.teacher)
    path = str(tmp_path_factory.mktemp('seg_teacher') / 'teacher.pth')
    torch.save(dict(meta=dict(), state_dict=teacher.state_dict()), path)
    return path


def test_segmentation_search_runs_end_to_end_on_the_demo_scenes(tmp_path, seg_teacher_ckpt):
    cfg = Config.fromfile(SEG_SEARCH)
    cfg.merge_from_dict({'proxy.cfg_options.model.teacher_ckpt': seg_teacher_ckpt})
    out = search_from_config(cfg, str(tmp_path), resume=False, progress=False)
    records = json.load(open(out['paths']['candidates']))
    assert len(records) >= 3  # population 2 + 1 iteration
    ok = [r for r in records if r['result']['status'] == 'ok']
    assert len(ok) >= 2 and all(r['result']['reason'] for r in records if r not in ok)
    for r in ok:
        terms = r['result']['terms']
        assert r['result']['iters'] == r['result']['planned_iters'] == 3  # 3 of 600 iterations
        assert 0 < terms['ce'] < 10 and terms['sharpness_gap'] >= 0 and 0 <= terms['cka'] <= 1 + 1e-6
        assert 0 <= terms['accuracy'] <= 100
    # the best distiller is written as a trainable segmentation distillation config
    best = Config.fromfile(out['paths']['config'])
    best.model.teacher_ckpt = None
    init_default_scope('mmrazor')
    model = MODELS.build(best.model)
    assert model.distiller.distill_losses['loss_kdzero'].genome == Genome.from_dict(out['best']['genome'])
    assert type(model.student).__name__ == 'EncoderDecoder'


def test_segmentation_proxy_compresses_the_iteration_schedule(tmp_path):
    base = Config.fromfile(Config.fromfile(SEG_SEARCH).base_config)
    genome = Genome.from_dict(base.kd_zero_genome)
    cfg = proxy_config(base, genome, 0.05, str(tmp_path), 0)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == 30  # 5% of 600
    assert cfg.param_scheduler[0]['end'] == 30  # poly decay over the proxy


def test_search_on_a_detection_config_is_refused_and_points_at_the_imagenet_search(tmp_path):
    with pytest.raises(ValueError, match='searched on ImageNet') as err:
        ProxyEvaluator(COCO, str(tmp_path))
    assert IMAGENET_SEARCH_CONFIG in str(err.value)
    assert osp.isfile(osp.join(ROOT, IMAGENET_SEARCH_CONFIG))
    cfg = Config(dict(base_config=COCO, search=dict(population_size=2, iterations=1, parents=2), proxy=dict()))
    with pytest.raises(ValueError, match='search_kd_zero_resnet34_resnet18_in1k-subset.py'):
        search_from_config(cfg, str(tmp_path / 'search'), progress=False)


def test_task_is_inferred_from_the_student_or_named_explicitly(tmp_path):
    assert infer_task(Config.fromfile(DIGITS)) == 'classification'
    assert infer_task(Config.fromfile(Config.fromfile(SEG_SEARCH).base_config)) == 'segmentation'
    assert infer_task(Config(dict(model=dict(type='FpnTeacherDistill', architecture=dict(type='X'))))) == 'detection'
    with pytest.raises(ValueError, match='cannot infer'):
        infer_task(Config(dict(model=dict(architecture=dict(type='MyNet')))))
    with pytest.raises(ValueError, match="unknown KD-Zero search task 'depth'"):
        ProxyEvaluator(DIGITS, str(tmp_path), task='depth')
    with pytest.raises(ValueError, match='seg_options are for segmentation'):
        ProxyEvaluator(DIGITS, str(tmp_path), seg_options=dict(cka_pixels=8))


def test_segmentation_cka_on_pooled_images_or_fixed_pixel_samples(cityscapes_root):
    from mmengine.runner import Runner

    from mmkd_ext.kd_zero.task_outputs import collect_segmentation
    search = Config.fromfile(SEG_SEARCH)
    base = Config.fromfile(search.base_config)
    base.model.teacher_ckpt = None
    init_default_scope('mmrazor')
    torch.manual_seed(0)
    model = MODELS.build(base.model)
    loader_cfg = search.proxy.fitness_dataloader
    loader_cfg.dataset.indices = [0, 1]

    def terms(**kwargs):
        return collect_segmentation(model, Runner.build_dataloader(loader_cfg, seed=0), 2, **kwargs)

    pooled, pixels = terms(), terms(cka_pixels=16, seed=3)
    assert pixels == terms(cka_pixels=16, seed=3)  # the same pixel positions every call
    assert pixels['cka'] != pooled['cka']
    for key in ('ce', 'sharpness_gap', 'accuracy'):  # pixel terms do not depend on the CKA choice
        assert pixels[key] == pytest.approx(pooled[key])
    assert 0 <= terms(cka_feature='classifier_input')['cka'] <= 1 + 1e-6
    with pytest.raises(ValueError, match='cka_feature must be one of'):
        terms(cka_feature='neck')
