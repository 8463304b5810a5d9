"""ACMKDDistill: construction errors, one optimizer per student, frozen peers for SSD, predictions."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmkd_ext.registry import MODELS

from .helpers import batch, cnn, tiny_cfg

OPTIM = dict(constructor='ACMKDOptimWrapperConstructor',
             optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9)))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg())


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_fewer_than_two_students_is_an_error():
    cfg = tiny_cfg()
    cfg['students'] = {'cnn': cfg['students']['cnn']}
    with pytest.raises(ValueError, match='at least two students'):
        MODELS.build(cfg)


def test_unknown_stage_name_names_the_student_and_close_matches():
    cfg = tiny_cfg()
    cfg['students']['vit']['stages'] = ['backbone.layers.0', 'backbone.layer.1']
    expected = r"ACMKD student 'vit' stage 'backbone.layer.1'.*did you mean.*'backbone.layers.1'"
    with pytest.raises(KeyError, match=expected):
        MODELS.build(cfg)


def test_unknown_teacher_stage_is_an_error():
    with pytest.raises(KeyError, match="ACMKD teacher stage 'backbone.layer4'"):
        MODELS.build(tiny_cfg(teacher_stages=['backbone.layer3', 'backbone.layer4']))


def test_students_with_different_class_counts_are_an_error():
    cfg = tiny_cfg()
    cfg['students']['cnn']['model'] = cnn(num_classes=5)
    with pytest.raises(ValueError, match=r'different class counts \(teacher: 4, cnn: 5, vit: 4\)'):
        MODELS.build(cfg)


def test_different_stage_counts_are_an_error():
    cfg = tiny_cfg()
    cfg['students']['cnn']['stages'] = ['backbone.layer3']
    with pytest.raises(ValueError, match='numbers of stages differ'):
        MODELS.build(cfg)


def test_optimizers_hold_disjoint_parameter_sets_covering_every_trainable_parameter(model):
    ow = build_optim_wrapper(model, OPTIM)
    assert sorted(ow.keys()) == ['cnn', 'teacher_attention', 'vit']
    ids = {name: {id(p) for g in w.param_groups for p in g['params']} for name, w in ow.items()}
    assert ids['cnn'] == {id(p) for p in model.branch('cnn').parameters()}
    assert ids['vit'] == {id(p) for p in model.branch('vit').parameters()}
    assert not ids['cnn'] & ids['vit']
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set().union(*ids.values()) == trainable
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_each_optimizer_updates_only_its_own_student(model):
    cfg = copy.deepcopy(OPTIM)
    cfg['overrides'] = dict(vit=dict(optimizer=dict(lr=0.0, momentum=0.0)))  # vit's optimizer does nothing
    ow = build_optim_wrapper(model, cfg)
    before = {n: _params(model.student(n)) for n in ('cnn', 'vit')}
    teacher = _params(model.teacher)
    model.train()
    model.train_step(batch(), ow)
    changed = {n: any(not torch.equal(p, before[n][k]) for k, p in model.student(n).named_parameters())
               for n in ('cnn', 'vit')}
    assert changed == {'cnn': True, 'vit': False}
    assert all(torch.equal(p, teacher[k]) for k, p in model.teacher.named_parameters())


def test_second_stage_term_sends_no_gradient_to_stronger_students(model):
    model.set_epoch(1)  # past the teacher-attention pre-training and ssd_start_epoch
    model.weakest = 'cnn'
    data = model.data_preprocessor(batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'ssd.loss_ce', 'ssd.loss_kd'} <= set(losses)
    (losses['ssd.loss_ce'] + losses['ssd.loss_kd']).backward()
    assert all(p.grad is None for p in model.branch('vit').parameters())
    grads = [p.grad for p in model.student('cnn').parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_no_second_stage_term_before_start_epoch_or_without_ranking(model):
    model.set_epoch(0)
    model.weakest = 'cnn'
    data = model.data_preprocessor(batch(), True)
    assert not any(k.startswith('ssd.') for k in model.loss(data['inputs'], data['data_samples']))
    model.set_epoch(3)
    model.weakest = None
    assert not any(k.startswith('ssd.') for k in model.loss(data['inputs'], data['data_samples']))


def test_teacher_attention_is_pretrained_first_then_frozen_while_students_match_it(model):
    data = model.data_preprocessor(batch(), True)
    model.set_epoch(0)
    first = model.loss(data['inputs'], data['data_samples'])
    assert 'teacher.loss_probe' in first and 'loss_att' not in first
    model.set_epoch(1)
    later = model.loss(data['inputs'], data['data_samples'])
    assert 'teacher.loss_probe' not in later and 'loss_att' in later
    later['loss_att'].backward()
    assert all(p.grad is None for p in model.teacher_attention.parameters())
    assert any(p.grad is not None for p in model.branch('vit').heads.parameters())


def test_ensemble_averages_student_probabilities(model):
    model.eval()
    out = model.predict_all(batch(4))
    assert set(out) == {'teacher', 'cnn', 'vit', 'ensemble'}
    expected = (torch.stack([s.pred_score for s in out['cnn']]) + torch.stack([s.pred_score for s in out['vit']])) / 2
    ensemble = torch.stack([s.pred_score for s in out['ensemble']])
    assert torch.allclose(ensemble, expected, atol=1e-6)
    assert torch.equal(torch.cat([s.pred_label for s in out['ensemble']]), expected.argmax(dim=1))


def test_dml_option_adds_a_term_per_student(model):
    model.dml_weight = 0.5
    data = model.data_preprocessor(batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'cnn.loss_dml', 'vit.loss_dml'} <= set(losses)


def test_ssd_start_epoch_defaults_to_ten_percent_of_training():
    m = MODELS.build(tiny_cfg(ssd_start_epoch=None))
    m.set_total_epochs(200)
    assert m.ssd_start_epoch == 20


def test_separate_step_mode_updates_only_the_weakest_student_in_its_extra_step():
    torch.manual_seed(0)
    # every term of the combined step weighs 0, so only the extra SSD step can move parameters
    model = MODELS.build(tiny_cfg(ssd_mode='separate_step', lambda_ce=0.0, lambda_kd=0.0, alpha=0.0))
    cfg = copy.deepcopy(OPTIM)
    cfg['optim_wrapper']['optimizer'].update(momentum=0.0)
    ow = build_optim_wrapper(model, cfg)
    model.set_epoch(1)
    model.weakest = 'vit'
    before = {n: _params(model.student(n)) for n in ('cnn', 'vit')}
    model.train()
    log = model.train_step(batch(), ow)
    assert 'ssd.loss_ce' in log and 'ssd.loss_kd' in log
    changed = {n: any(not torch.equal(p, before[n][k]) for k, p in model.student(n).named_parameters())
               for n in ('cnn', 'vit')}
    assert changed == {'cnn': False, 'vit': True}


def test_training_hits_stay_on_the_device_and_the_loss_step_runs_on_fake_cuda():
    """The running training accuracy added ``float(hits)`` every step: a host sync per step on a GPU, and a step the
    fake-CUDA device check could not follow past it. The hits now stay 0-dim tensors on the logits' device; the
    epoch's accuracy reads them once."""
    from mmkd_ext.device_check import fake_cuda_train_step
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg())
    model.train()
    data = model.data_preprocessor(batch(8), True)
    with torch.no_grad():
        model(**data, mode='loss')
        logits = {name: getattr(model, model.branch_key(name)).classifier(data['inputs'])
                  for name in model.student_names}
    labels = torch.tensor([i % 4 for i in range(8)])
    expected = {n: 100.0 * float((z.argmax(1) == labels).sum()) / 8 for n, z in logits.items()}
    for name in model.student_names:
        assert torch.is_tensor(model._train_hits[name][0]) and model._train_hits[name][0].dim() == 0
    assert model.train_accuracies(reset=True) == pytest.approx(expected)
    report = fake_cuda_train_step(model, batch(8))
    assert report.status == 'checked', report.summary()
