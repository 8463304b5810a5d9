"""The compat layer makes MMRazor import and distil on current torch, and only patches what is missing."""
import importlib

import torch
from torch import nn

from mmkd_ext.compat import torch_quantization


def test_mmrazor_models_import_and_register_all_modules():
    import mmrazor.models  # noqa: F401
    from mmrazor.registry import MODELS
    from mmrazor.utils import register_all_modules
    register_all_modules(False)
    for name in ('SingleTeacherDistill', 'ConfigurableDistiller', 'KLDivergence', 'FpnTeacherDistill'):
        assert MODELS.get(name) is not None, name


def _tiny_classifier(num_classes=4):
    return dict(
        _scope_='mmpretrain', type='ImageClassifier',
        backbone=dict(type='CIFARResNet', arch='resnet8'), neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=64))


def test_single_teacher_distill_kl_forward_backward():
    from mmpretrain.structures import DataSample
    from mmrazor.registry import MODELS
    algo = MODELS.build(dict(
        type='SingleTeacherDistill', architecture=_tiny_classifier(), teacher=_tiny_classifier(),
        distiller=dict(
            type='ConfigurableDistiller',
            student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
            teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
            distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=4)),
            loss_forward_mappings=dict(loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'), preds_T=dict(from_student=False, recorder='fc'))))))
    torch.manual_seed(0)
    x = torch.randn(3, 3, 32, 32)
    samples = [DataSample().set_gt_label(i % 4) for i in range(3)]
    losses = algo.loss(x, samples)
    assert set(losses) == {'student.loss', 'distill.loss_kl'}
    total = sum(losses.values())
    total.backward()
    assert all(p.grad is None for p in algo.teacher.parameters())
    assert algo.student.head.fc.weight.grad is not None
    # the recorded logits give the same KL as a direct computation, tau^2 * KL(p_T || p_S) / N
    with torch.no_grad():
        s, t = algo.student(x, mode='tensor'), algo.teacher(x, mode='tensor')
        expected = 16 * torch.nn.functional.kl_div((s / 4).log_softmax(1), (t / 4).softmax(1), reduction='batchmean')
    torch.testing.assert_close(losses['distill.loss_kl'].detach(), expected)


def test_each_patch_is_skipped_where_torch_has_the_name(monkeypatch):
    fuser = importlib.import_module('torch.ao.quantization.fuser_method_mappings')
    import torch.ao.quantization.backend_config as backend_config
    sentinels = {}
    for name in ('reverse2', 'reverse3', 'reverse_sequential_wrapper2'):
        sentinels[name] = object()
        monkeypatch.setattr(fuser, name, sentinels[name], raising=False)
    utils_module = importlib.import_module('torch.ao.quantization.backend_config.utils')
    monkeypatch.setattr(backend_config, 'utils', utils_module, raising=False)
    setters = {}
    for setter in torch_quantization._REMOVED_PATTERN_SETTERS:
        setters[setter] = lambda self, value: self
        monkeypatch.setattr(backend_config.BackendPatternConfig, setter, setters[setter], raising=False)

    assert torch_quantization.apply() == []
    for name, sentinel in sentinels.items():
        assert getattr(fuser, name) is sentinel
    for setter, fn in setters.items():
        assert getattr(backend_config.BackendPatternConfig, setter) is fn


def test_missing_names_are_restored_with_torch1_semantics(monkeypatch):
    fuser = importlib.import_module('torch.ao.quantization.fuser_method_mappings')
    monkeypatch.delattr(fuser, 'reverse2', raising=False)
    restored = torch_quantization.apply()
    assert 'torch.ao.quantization.fuser_method_mappings.reverse2' in restored
    calls = []
    fused = fuser.reverse2(lambda is_qat, a, b: calls.append((is_qat, a, b)))
    fused(False, 'x', 'y')
    assert calls == [(False, 'y', 'x')]  # (y, x) pattern -> f(is_qat, y, x)
    seq = torch_quantization.reverse_sequential_wrapper2(nn.Sequential)(False, nn.ReLU(), nn.Identity())
    assert isinstance(seq, nn.Sequential) and isinstance(seq[0], nn.Identity) and isinstance(seq[1], nn.ReLU)
