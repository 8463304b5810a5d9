"""Every distillation config the installed mmrazor ships loads and builds on our stack, without downloads.

33 files under ``mmrazor/.mim/configs/distill``: 31 distillation jobs build (one of them, DeiT, only with the
optional ``timm``), one dataset fragment loads, the mmdet3d one is out of scope and fails for that reason.
Weights a config would download are switched off first (one printed line each); models are built at random init.
Each job then steps two training iterations on stand-in data through the config check (`make test` runs these in
its parallel group).
The DKD baselines (CIFAR-100 and digits) are MMRazor's DKD distiller, and its loss matches an independent DKD.
"""
import functools
import importlib.util

import mmengine.config.utils
import pytest
import torch
from conftest import config_path
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from mmrazor.models.algorithms import BaseAlgorithm
from mmrazor.registry import MODELS

from mmkd_ext import mmrazor_zoo as zoo
from mmkd_ext.config_check import check_config
from mmkd_ext.weight_sources import replace_unavailable_weights

# Counted by hand from `find mmrazor/.mim/configs/distill -name '*.py'` (mmrazor 1.0.0): 20 mmcls, 11 mmdet,
# 1 mmdet3d, 1 mmseg.
SHIPPED = {'mmcls': 20, 'mmdet': 11, 'mmdet3d': 1, 'mmseg': 1}


@pytest.fixture(scope='module', autouse=True)
def metafiles_read_once():
    """Each ``package::path`` lookup re-parses every metafile.yml of the package (~1 s for mmdet); parse each once.

    The files do not change during the test and their readers only read the parsed dicts.
    """
    cached = functools.lru_cache(maxsize=None)(mmengine.config.utils.load)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mmengine.config.utils, 'load', cached)
        yield


def test_every_shipped_file_is_built_or_listed_with_a_reason():
    configs = zoo.zoo_configs()
    assert {task: sum(c.startswith(task + '/') for c in configs) for task in SHIPPED} == SHIPPED
    assert len(configs) == 33
    listed = {**zoo.OUT_OF_SCOPE, **zoo.FRAGMENTS}
    assert set(listed) <= set(configs) and set(zoo.NEEDS_PACKAGE) <= set(zoo.buildable_configs())
    assert len(zoo.buildable_configs()) == 31


@pytest.mark.parametrize('rel_path', sorted(zoo.OUT_OF_SCOPE))
def test_out_of_scope_configs_fail_for_the_stated_reason(rel_path):
    with pytest.raises(ModuleNotFoundError, match='mmdet3d is not installed'):
        zoo.load_zoo_config(rel_path)


@pytest.mark.parametrize('rel_path', sorted(zoo.FRAGMENTS))
def test_fragments_load_and_define_no_model(rel_path):
    cfg = zoo.load_zoo_config(rel_path)
    assert 'model' not in cfg and cfg.train_dataloader.dataset.type == 'CIFAR10'


def no_download_left(node):
    """True if no string in ``node`` is a URL or a checkpoint file name."""
    if isinstance(node, dict):
        return all(no_download_left(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return all(no_download_left(v) for v in node)
    return not (isinstance(node, str) and ('://' in node or node.endswith('.pth')))


def build(model_cfg, default_scope):
    with DefaultScope.overwrite_default_scope(default_scope):
        return MODELS.build(model_cfg)


@pytest.mark.parametrize('rel_path', zoo.buildable_configs())
def test_zoo_config_loads_and_builds(rel_path):
    cfg = zoo.load_zoo_config(rel_path)
    lines = replace_unavailable_weights(cfg)  # what the config check does (cfg_path models expanded first)
    print('\n'.join([f'{rel_path}: {len(lines)} weight(s) switched off'] + lines))
    assert no_download_left(cfg.model)
    package = zoo.NEEDS_PACKAGE.get(rel_path)
    if package and importlib.util.find_spec(package) is None:
        with pytest.raises(ImportError, match=package):
            build(cfg.model, cfg.default_scope)
        build(cfg.model.architecture, cfg.default_scope)  # the student builds without it
        return
    model = build(cfg.model, cfg.default_scope)
    assert isinstance(model, BaseAlgorithm)
    assert sum(p.numel() for p in model.architecture.parameters()) > 0


@pytest.mark.parametrize('rel_path', zoo.buildable_configs())
def test_zoo_config_steps_two_training_iterations_on_standin_data(rel_path, tmp_path):
    """The config check (``--shrink``, train only) on ``mmrazor::distill/<rel_path>``: stand-in data in the config's
    format, downloads replaced by random initialisation (one printed line each), build and two training steps."""
    report = check_config(f'mmrazor::distill/{rel_path}', str(tmp_path / 'check'), shrink_inputs=True,
                          train_only=True)
    assert [step.name for step in report.steps] == ['build', 'train']


def test_a_detection_visualizer_is_not_handed_a_visualizer_another_check_made(tmp_path):
    """MMEngine keeps one visualizer per class and name per process and ``RazorVisualizationHook`` draws with the
    latest one created: after an earlier detection check had made the ``DetLocalVisualizer`` named 'visualizer' and a
    later check a plain ``Visualizer``, the COCO visualization config got the old detection visualizer back (no new
    instance), the hook the plain one, and training failed (``add_datasample() got an unexpected keyword argument
    'out_file'``; CI, depending on what the xdist worker had run before)."""
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    DetLocalVisualizer.get_instance('visualizer')  # an earlier detection check in this worker
    Visualizer.get_instance('after_it')  # a later check without a task visualizer
    report = check_config('mmrazor::distill/mmdet/cwd/cwd_fpn_retina_r101_retina_r50_1x_coco_visualization.py',
                          str(tmp_path / 'check'), shrink_inputs=True, train_only=True)
    assert [step.name for step in report.steps] == ['build', 'train']


DKD_BASELINE = config_path('kd', 'dkd_resnet32x4_resnet8x4_1xb64-240e_cifar100.py')
VRM = config_path('vrm', 'vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py')
DKD_ZOO = 'mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py'


@pytest.mark.parametrize('config', [DKD_BASELINE, config_path('kd', 'dkd_resnet20_resnet8x0.5_1xb32-30e_digits.py')])
def test_dkd_baselines_are_mmrazors_dkd_distiller_with_the_cifar100_hyper_parameters(config):
    ours = Config.fromfile(config).model.distiller.to_dict()
    mmrazor_dkd = zoo.load_zoo_config(DKD_ZOO).model.distiller.to_dict()
    mmrazor_dkd['distill_losses']['loss_dkd'].update(tau=4, alpha=1, beta=8, reduction='batchmean')
    assert ours == mmrazor_dkd


def test_dkd_baseline_shares_data_teacher_and_schedule_with_vrm():
    dkd, vrm = Config.fromfile(DKD_BASELINE), Config.fromfile(VRM)
    for key in ('architecture', 'teacher', 'teacher_ckpt'):
        assert dkd.model[key] == vrm.model[key], key
    for key in ('val_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg', 'randomness'):
        assert dkd.get(key) == vrm.get(key), key
    vrm_pipeline = [t for t in vrm.train_dataloader.dataset.pipeline if t.type != 'VRMVirtualView']
    assert dkd.train_dataloader.dataset.pipeline == vrm_pipeline  # VRM adds only its virtual view
    assert {**dkd.train_dataloader.dataset, 'pipeline': None} == {**vrm.train_dataloader.dataset, 'pipeline': None}


def dkd_reference(logits_s, logits_t, labels, tau, alpha, beta):
    """DKD (Zhao et al., CVPR 2022): (alpha * TCKD + beta * NCKD) * tau^2, KL summed over classes, batch mean."""
    p_s, p_t = (torch.softmax(z / tau, dim=1) for z in (logits_s, logits_t))
    target = torch.nn.functional.one_hot(labels, logits_s.shape[1]).bool()
    b_s = torch.stack([p_s[target], 1 - p_s[target]], dim=1)
    b_t = torch.stack([p_t[target], 1 - p_t[target]], dim=1)
    tckd = (b_t * (b_t.log() - b_s.log())).sum(1).mean()
    q_s = torch.softmax(logits_s[~target].view(len(labels), -1) / tau, dim=1)
    q_t = torch.softmax(logits_t[~target].view(len(labels), -1) / tau, dim=1)
    nckd = (q_t * (q_t.log() - q_s.log())).sum(1).mean()
    return (alpha * tckd + beta * nckd) * tau**2


def test_dkd_baseline_builds_on_mmpretrain_and_feeds_the_labels_to_dkd():
    torch.manual_seed(0)
    cfg = Config.fromfile(DKD_BASELINE)
    cfg.model.teacher_ckpt = None
    model = build(cfg.model, cfg.default_scope)
    model.eval()  # BN on its running statistics: the reference forwards below see the same logits
    with torch.no_grad():  # logits of O(1) spread: at random init they are ~1e-2 and the KL drowns in rounding
        model.architecture.head.fc.weight.mul_(300)
        model.teacher.head.fc.weight.mul_(500)
    labels = torch.tensor([3, 97])
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in labels],
        data_samples=[DataSample().set_gt_label(int(y)) for y in labels]))
    losses = model.loss(data['inputs'], data['data_samples'])
    with torch.no_grad():
        logits_s = model.architecture(data['inputs'], mode='tensor')
        logits_t = model.teacher(data['inputs'], mode='tensor')
    assert logits_s.std() > 0.5 and logits_t.std() > 0.5
    expected = dkd_reference(logits_s, logits_t, labels, tau=4, alpha=1, beta=8)
    assert torch.allclose(losses['distill.loss_dkd'], expected, rtol=1e-4)
