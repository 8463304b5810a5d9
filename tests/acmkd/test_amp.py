"""ACMKD with ``--amp``: AmpOptimWrapper per student, every student's forward under autocast, one scaled
backward whose gradient every optimizer unscales with the one shared GradScaler."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict
from mmengine.optim.optimizer import amp_optimizer_wrapper

from mmkd_ext.acmkd.optim import _merge
from mmkd_ext.launch import enable_amp
from mmkd_ext.registry import MODELS

from .helpers import ROOT, batch, tiny_cfg

DIGITS = osp.join(ROOT, 'configs', 'acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')


def test_amp_turns_the_per_student_template_into_amp_wrappers(monkeypatch):
    cfg = Config.fromfile(DIGITS)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)  # enable_amp refuses a machine without a GPU
    enable_amp(cfg)
    template = cfg.optim_wrapper.optim_wrapper.to_dict()
    assert template['type'] == 'AmpOptimWrapper' and template['loss_scale'] == 'dynamic'
    vit = _merge(template, cfg.optim_wrapper.overrides.vit.to_dict())  # the ViT's own optimizer, still AMP
    assert vit['type'] == 'AmpOptimWrapper' and vit['optimizer']['type'] == 'AdamW'


def _model():
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg()).train()


def _wrappers(model, amp, monkeypatch):
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)  # CPU autocast is real
    out = {}
    for name, module in model.optim_groups().items():
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        if amp:
            out[name] = AmpOptimWrapper(optimizer=optimizer, dtype='bfloat16')
            out[name].loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 12)  # a CPU scaler that scales
        else:
            from mmengine.optim import OptimWrapper
            out[name] = OptimWrapper(optimizer=optimizer)
    return OptimWrapperDict(**out)


def _output_dtypes(model):
    """{student: dtype of its logits (linear head output)}, filled by forward hooks."""
    dtypes = {}

    def record(name):
        def hook(module, args, out):
            dtypes.setdefault(name, (out[-1] if isinstance(out, tuple) else out).dtype)
        return hook

    for name in model.student_names:
        model.student(name).head.register_forward_hook(record(name))
    return dtypes


def test_amp_step_runs_every_student_under_autocast_and_unscales_with_one_scaler(monkeypatch):
    fp32, amp = _model(), _model()
    before = {n: p.detach().clone() for n, p in fp32.named_parameters()}
    fp32.train_step(batch(), _wrappers(fp32, False, monkeypatch))
    dtypes = _output_dtypes(amp)
    wrappers = _wrappers(amp, True, monkeypatch)
    amp.train_step(batch(), wrappers)
    assert dtypes == {n: torch.bfloat16 for n in amp.student_names}  # each student ran inside autocast
    assert len({id(w.loss_scaler) for w in wrappers.values()}) == 1  # one scaler for the one backward
    for name in amp.student_names:
        key = f'{amp.branch_key(name)}.classifier.head'
        deltas = [torch.cat([(dict(m.named_parameters())[n].detach() - before[n]).flatten() for n in before if
                             n.startswith(key)]) for m in (fp32, amp)]
        # unscaled by the same 2^12 it was scaled with: the bf16 step is the fp32 step up to rounding
        cos = torch.nn.functional.cosine_similarity(deltas[0], deltas[1], dim=0)
        assert cos > 0.98 and deltas[1].norm() / deltas[0].norm() == pytest.approx(1.0, abs=0.1), name


def test_mixed_amp_and_plain_wrappers_are_a_clear_error(monkeypatch):
    model = _model()
    wrappers = _wrappers(model, True, monkeypatch)
    plain = copy.copy(_wrappers(model, False, monkeypatch).optim_wrappers)
    mixed = OptimWrapperDict(**{**wrappers.optim_wrappers, 'cnn': plain['cnn']})
    with pytest.raises(NotImplementedError, match='same wrapper type'):
        model.train_step(batch(), mixed)


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module):
    return sorted(n for n, p in module.named_parameters() if not torch.equal(p.detach(), before[n]))


@pytest.mark.parametrize('alpha', [1.0, 0.0])
def test_amp_steps_across_the_epoch_where_teacher_attention_stops_training(alpha, monkeypatch):
    """A real CPU GradScaler over epochs 0 and 1 with ``teacher_attention_epochs=1``: once the teacher's
    attention stops training (at once with ``alpha=0``) its optimizer gets no gradient and must not be stepped
    (``GradScaler.step`` raised 'No inf checks were recorded for this optimizer')."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(alpha=alpha, teacher_attention_epochs=1)).train()
    wrappers = _wrappers(model, True, monkeypatch)
    assert 'teacher_attention' in wrappers.optim_wrappers  # built at epoch 0, kept by the Runner for every epoch
    heads = model.teacher_attention
    for epoch in (0, 1):
        model.set_epoch(epoch)
        before, students = _params(heads), {n: _params(model.branch(n)) for n in model.student_names}
        model.train_step(batch(seed=epoch), wrappers)
        trained = _changed(before, heads)
        if epoch == 0 and alpha > 0:  # the CBAMs and their linear probes are pre-trained
            assert {n.split('.')[0] for n in trained} == {'attentions', 'probes'}
        else:
            assert trained == []  # frozen: not stepped, not even by weight decay or momentum
        for name in model.student_names:
            assert _changed(students[name], model.branch(name)), (epoch, name)  # every student still learns
    scaler = wrappers['cnn'].loss_scaler
    assert scaler.get_scale() == 2.0 ** 12  # no inf/nan: the scale neither backed off nor grew (interval 2000)
