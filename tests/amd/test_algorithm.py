"""AMDDistill: the sandwich step of supp. Algorithm 1 and the frozen (optionally pruned) teacher."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

from mmkd_ext.amd.algorithm import AMDDistill
from mmkd_ext.registry import MODELS

from .conftest import INPUT, cifar_resnet

PRE = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)


def _model_cfg():
    return dict(cifar_resnet('resnet8'), data_preprocessor=PRE)


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(0)
    teacher = MODELS.build(_model_cfg())
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, path)
    return path


def _algorithm(ckpt, **kwargs):
    cfg = dict(architecture=_model_cfg(), teacher=_model_cfg(), teacher_ckpt=ckpt, scales=[0.8, 0.5],
               pruner=dict(input_shape=INPUT), feature_modules=['backbone.layer1', 'backbone.layer3'])
    cfg.update(kwargs)
    return AMDDistill(**cfg)


def _batch():
    g = torch.Generator().manual_seed(2)
    inputs = [torch.randint(0, 256, INPUT, generator=g, dtype=torch.uint8) for _ in range(4)]
    samples = [DataSample().set_gt_label(i % 10) for i in range(4)]
    return dict(inputs=inputs, data_samples=samples)


def test_student_inherits_teacher_weights(teacher_ckpt):
    algo = _algorithm(teacher_ckpt)
    for (name, p), (_, q) in zip(algo.architecture.state_dict().items(), algo.teacher.state_dict().items()):
        assert torch.equal(p, q), name


def test_train_step_applies_the_mean_gradient_of_all_candidates(teacher_ckpt):
    algo = _algorithm(teacher_ckpt)
    algo.train()
    data = algo.data_preprocessor(_batch(), True)
    t_logits, t_feats = algo._teacher_outputs(data['inputs'])
    params = [p for p in algo.architecture.parameters()]
    expected = [torch.zeros_like(p) for p in params]
    for scale in (0.8, 0.5):  # independent reference: one candidate at a time
        algo.set_scale(scale)
        loss = sum(algo.candidate_losses(data['inputs'], data['data_samples'], t_logits, t_feats).values())
        for acc, g in zip(expected, torch.autograd.grad(loss / 2, params, allow_unused=True)):
            acc += 0 if g is None else g
    before = [p.detach().clone() for p in params]
    teacher_before = [p.detach().clone() for p in algo.teacher.parameters()]
    algo.train_step(_batch(), OptimWrapper(torch.optim.SGD(params, lr=1.0)))
    for b, p, g in zip(before, params, expected):
        assert torch.allclose(b - p.detach(), g, atol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, algo.teacher.parameters()))


def test_train_step_logs_the_three_loss_terms(teacher_ckpt):
    algo = _algorithm(teacher_ckpt, beta=0.0)
    algo.train()
    params = list(algo.architecture.parameters())
    log = algo.train_step(_batch(), OptimWrapper(torch.optim.SGD(params, lr=0.0)))
    assert set(log) == {'loss', 'loss_ce', 'loss_logit', 'loss_feat'}
    assert float(log['loss_feat']) == 0.0
    assert float(log['loss']) == pytest.approx(float(log['loss_ce'] + log['loss_logit']))


def test_pruned_teacher_is_the_selected_sub_network(teacher_ckpt):
    algo = _algorithm(teacher_ckpt, teacher_scale=0.5)
    algo.eval()
    x = algo.data_preprocessor(_batch(), False)['inputs']
    algo.set_scale(0.5)
    assert torch.allclose(algo.teacher(x), algo.architecture(x), atol=1e-6)
    algo.set_scale(None)
    assert not torch.allclose(algo.teacher(x), algo.architecture(x), atol=1e-3)


def test_unknown_feature_module_is_a_clear_error(teacher_ckpt):
    with pytest.raises(Exception, match='backbone.layer4'):
        _algorithm(teacher_ckpt, feature_modules=['backbone.layer4'])


def test_transformer_without_importance_file_is_a_clear_error():
    from .conftest import tiny_vit
    vit = dict(tiny_vit(), data_preprocessor=PRE)
    with pytest.raises(ValueError, match='importance_file'):
        AMDDistill(architecture=vit, teacher=vit, scales=[0.7], pruner=dict(input_shape=INPUT),
                   logit_module='head.layers.head')


def test_every_candidate_keeps_its_own_bn_statistics(teacher_ckpt):
    algo = _algorithm(teacher_ckpt)
    algo.train()
    params = list(algo.architecture.parameters())
    algo.train_step(_batch(), OptimWrapper(torch.optim.SGD(params, lr=0.0)))
    stats = algo.bn_stats()
    bn = 'backbone.layer3.0.bn2'  # after the pruned conv1 of the block: sees different inputs per candidate
    mean_08, mean_05 = stats['0.8'][bn]['running_mean'], stats['0.5'][bn]['running_mean']
    assert not torch.allclose(mean_08, mean_05)
    algo.set_scale(0.5)
    live = dict(algo.architecture.named_modules())[bn].running_mean
    assert torch.equal(live, mean_05)
    algo.set_scale(0.8)
    assert torch.equal(live, mean_08)
