"""Virtual views, the two-view data preprocessor and VRMDistill trained through the MMEngine Runner."""
import copy
import time

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmkd_ext.registry import MODELS, PRETRAIN_MODELS, PRETRAIN_TRANSFORMS
from mmkd_ext.vrm.algorithm import VRMDistill
from mmkd_ext.vrm.data_preprocessor import TwoViewDataPreprocessor, is_two_view_batch
from tests.conftest import config_path

INVERT_VIEW = dict(_scope_='mmpretrain', type='VRMVirtualView', transforms=[dict(type='Invert', prob=1.0)])
VRM_CFG = config_path('vrm', 'vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py')


def test_virtual_view_applies_transforms_to_a_copy_of_the_real_view():
    view = PRETRAIN_TRANSFORMS.build(INVERT_VIEW)
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    out = view(dict(img=img.copy(), img_shape=(4, 4)))
    real, virtual = out['img']
    np.testing.assert_array_equal(real, img)
    np.testing.assert_array_equal(virtual, 255 - img)


def test_virtual_view_randaugment_keeps_the_size():
    view = PRETRAIN_TRANSFORMS.build(dict(_scope_='mmpretrain', type='VRMVirtualView', transforms=[
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
             hparams=dict(pad_val=0))]))
    img = np.random.RandomState(0).randint(0, 255, (32, 32, 3)).astype(np.uint8)
    real, virtual = view(dict(img=img.copy(), img_shape=(32, 32)))['img']
    assert virtual.shape == real.shape == img.shape


def test_virtual_view_rejects_a_second_application():
    view = PRETRAIN_TRANSFORMS.build(INVERT_VIEW)
    with pytest.raises(ValueError, match='already a list'):
        view(dict(img=[np.zeros((2, 2, 3), np.uint8)] * 2))


def test_two_view_preprocessor_stacks_real_then_virtual():
    inner = PRETRAIN_MODELS.build(
        dict(_scope_='mmpretrain', type='ClsDataPreprocessor', mean=[1., 1, 1], std=[2., 2, 2]))
    pre = TwoViewDataPreprocessor(inner)
    real = [torch.full((3, 2, 2), 3, dtype=torch.uint8) for _ in range(2)]
    virtual = [torch.full((3, 2, 2), 5, dtype=torch.uint8) for _ in range(2)]
    assert is_two_view_batch([real, virtual]) and not is_two_view_batch(real)
    out = pre(dict(inputs=[real, virtual], data_samples=None))
    assert out['inputs'].shape == (4, 3, 2, 2)
    assert torch.all(out['inputs'][:2] == 1) and torch.all(out['inputs'][2:] == 2)  # (3-1)/2, (5-1)/2
    single = pre(dict(inputs=real, data_samples=None))  # validation batches pass through
    assert single['inputs'].shape == (2, 3, 2, 2)


def _tiny_cfg(work_dir, num_train=64, **model):
    cfg = Config.fromfile(VRM_CFG)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'vrm_test_{time.time_ns()}'  # Runners built within one second must not share loggers
    cfg.model.teacher_ckpt = None  # randomly initialised teacher: the test is about the mechanics
    cfg.model.update(model)
    cfg.train_dataloader.dataset.indices = num_train
    cfg.val_dataloader.dataset.indices = 16
    cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.log_level = 'WARNING'
    return cfg


@pytest.fixture(scope='module')
def built(digits_root, tmp_path_factory):
    """One built (not trained) Runner and a preprocessed two-view batch, shared by the read-only tests."""
    runner = Runner.from_cfg(_tiny_cfg(tmp_path_factory.mktemp('vrm_built')))
    data = runner.model.data_preprocessor(next(iter(runner.train_dataloader)), True)
    return runner, data


def test_config_builds_vrm_distill_with_two_view_preprocessor(built):
    model = built[0].model
    assert isinstance(model, VRMDistill)
    assert isinstance(model.data_preprocessor, TwoViewDataPreprocessor)
    assert type(model.distiller.distill_losses['loss_vrm']).__name__ == 'VRMLoss'


class _Snapshot(Hook):
    """Copies teacher, student and adaptor weights once the Runner has initialised them."""

    def before_train(self, runner):
        model = runner.model
        self.states = {name: copy.deepcopy(module.state_dict()) for name, module in
                       (('student', model.student), ('teacher', model.teacher),
                        ('adaptor', model.distiller.distill_losses['loss_vrm'].adaptor))}


def _changed(before, module):
    after = module.state_dict()
    return [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]


def test_runner_trains_vrm_student_and_keeps_teacher_fixed(digits_root, tmp_path):
    runner = Runner.from_cfg(_tiny_cfg(tmp_path))
    snapshot = _Snapshot()
    runner.register_hook(snapshot)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('train/student.loss', 'train/distill.loss_vrm.loss_isv', 'train/distill.loss_vrm.loss_icv'):
        assert key in scalars and np.isfinite(scalars[key].current())
    model = runner.model
    assert _changed(snapshot.states['student'], model.student)
    assert _changed(snapshot.states['adaptor'], model.distiller.distill_losses['loss_vrm'].adaptor)
    assert not _changed(snapshot.states['teacher'], model.teacher)
    # the config ramps the VRM terms in over 5 epochs: after 2 of 5 x 2 iterations the factor is 2 / 10
    assert model.distiller.distill_losses['loss_vrm'].warmup_factor == pytest.approx(0.2)


def test_loss_sums_ce_of_both_views_and_adds_relation_terms(built):
    model, data = built[0].model, built[1]
    inputs, samples = data['inputs'], data['data_samples']
    losses = model.loss(inputs, samples)
    b = len(samples)
    assert inputs.shape[0] == 2 * b
    labels = torch.cat([s.gt_label for s in samples])
    with torch.no_grad():
        logits = model.student(inputs, mode='tensor')
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits[:b], labels) + ce(logits[b:], labels)
    torch.testing.assert_close(losses['student.loss'].detach(), expected, rtol=1e-4, atol=1e-5)
    assert set(losses) >= {'distill.loss_vrm.loss_isv', 'distill.loss_vrm.loss_icv'}


def test_separate_bn_forward_records_both_views(built):
    model, data = built[0].model, built[1]
    model.separate_bn_forward = True
    try:
        losses = model.loss(data['inputs'], data['data_samples'])
    finally:
        model.separate_bn_forward = False
    assert torch.isfinite(losses['distill.loss_vrm.loss_isv'])
    record = model.distiller.student_recorders.get_recorder('fc').data_buffer
    assert len(record) == 1 and record[0].shape[0] == data['inputs'].shape[0]


def test_single_view_pipeline_gives_a_clear_error(digits_root, tmp_path):
    cfg = _tiny_cfg(tmp_path)
    cfg.train_dataloader.dataset.pipeline = [p for p in cfg.train_dataloader.dataset.pipeline
                                             if p['type'] != 'VRMVirtualView']
    runner = Runner.from_cfg(cfg)
    data = runner.model.data_preprocessor(next(iter(runner.train_dataloader)), True)
    with pytest.raises(ValueError, match='real and a virtual view'):
        runner.model.loss(data['inputs'], data['data_samples'])


def test_vrm_distill_is_registered():
    assert MODELS.get('VRMDistill') is VRMDistill
