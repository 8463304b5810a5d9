"""Sliced candidates (issue 14): same loss, gradients and kept BN statistics as the masked form, at their own FLOPs."""
import copy

import pytest
import torch
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from torch._subclasses.fake_tensor import FakeTensorMode

from mmkd_ext.amd.flops import total_flops
from mmkd_ext.amd.pruner import AMDPruner
from mmkd_ext.amd.slicing import SlicedForward

from . import test_algorithm
from .conftest import INPUT, build, cifar_resnet, tiny_vit
from .test_export_cnn_swin import _random_scores, build_random_bn, tiny_vgg

CASES = {'cifar_resnet': lambda: build_random_bn(cifar_resnet('resnet8')), 'vgg': lambda: build_random_bn(tiny_vgg()),
         'vit': lambda: build(tiny_vit())}


def _pair(name, scale=0.5):
    """The same network twice, masked and sliced to ``scale`` with the same random ranking, in train mode."""
    model = CASES[name]()
    models = {mode: copy.deepcopy(model).train() for mode in ('masked', 'sliced')}
    pruners = {mode: AMDPruner(m, INPUT, candidate_mode=mode) for mode, m in models.items()}
    scores = _random_scores(pruners['masked'].units)
    for pruner in pruners.values():
        pruner.set_scores(scores)
        pruner.apply(scale)
    return models, pruners


@pytest.mark.parametrize('name', list(CASES))
def test_sliced_candidate_has_the_masked_loss_gradients_and_kept_bn_statistics(name):
    models, pruners = _pair(name)
    x = torch.randn(4, *INPUT, generator=torch.Generator().manual_seed(5))
    grads, losses = {}, {}
    for mode, model in models.items():
        out = model(x)
        losses[mode] = (out ** 2).mean() + out[:, 0].sum()
        params = dict(model.named_parameters())
        grads[mode] = dict(zip(params, torch.autograd.grad(losses[mode], list(params.values()))))
    assert torch.allclose(losses['sliced'], losses['masked'], atol=1e-5)
    for key, g in grads['masked'].items():  # the whole tensors: kept entries equal, pruned ones zero in both
        assert torch.allclose(grads['sliced'][key], g, atol=1e-5), key
    keep = pruners['masked'].keep(0.5)
    buffers = {mode: dict(m.named_buffers()) for mode, m in models.items()}
    for unit in pruners['masked'].units:
        for producer, role in unit.producers:
            if role == 'norm':
                for stat in ('running_mean', 'running_var'):
                    key = f'{producer}.{stat}'
                    kept = keep[unit.name]
                    assert torch.allclose(buffers['sliced'][key][kept], buffers['masked'][key][kept], atol=1e-6)


@pytest.mark.parametrize('name', ['cifar_resnet', 'vgg'])
def test_sliced_candidate_costs_its_own_flops(name):
    models, pruners = _pair(name)
    models['sliced'].eval()
    x = torch.randn(1, *INPUT)
    full = total_flops(copy.deepcopy(CASES[name]()), (x, ))
    sliced = total_flops(models['sliced'], (x, ))  # MMEngine's count of what the sliced forward computes
    assert sliced / full == pytest.approx(pruners['sliced'].solve(0.5).scale, rel=1e-6)
    assert total_flops(models['masked'].eval(), (x, )) == full  # the masked form computes everything


def test_full_scale_restores_the_modules_own_forward():
    models, pruners = _pair('cifar_resnet')
    pruners['sliced'].apply(None)
    assert not any('forward' in vars(m) for m in models['sliced'].modules())


teacher_ckpt = test_algorithm.teacher_ckpt  # the fixture: a random resnet8 teacher checkpoint


def test_joint_step_with_sliced_candidates_equals_the_masked_step(teacher_ckpt):
    params = {}
    for mode in ('masked', 'sliced'):
        algo = test_algorithm._algorithm(teacher_ckpt, pruner=dict(input_shape=INPUT, candidate_mode=mode)).train()
        algo.train_step(test_algorithm._batch(), OptimWrapper(torch.optim.SGD(algo.architecture.parameters(), lr=1.0)))
        params[mode] = {n: p.detach() for n, p in algo.architecture.named_parameters()}
    for name, p in params['masked'].items():
        assert torch.allclose(params['sliced'][name], p, atol=1e-5), name


def test_slicing_survives_mmengine_replacing_the_bn_modules(images):
    models, pruners = _pair('cifar_resnet')
    model = models['sliced'].eval()
    expected = model(images)
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    revert_sync_batchnorm(model)  # one device: the Runner's revert gives new BN modules
    pruners['sliced'].apply(0.5)
    assert torch.allclose(model(images), expected, atol=1e-6)
    bns = {m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
    assert any(m in bns for m in pruners['sliced'].slicer._patched)  # the live BN modules are the sliced ones


# ------------------------------------------------------------------ issue 23 defect 2: a teacher pruned before the move
def _to_fake_cuda(model, mode):
    """What the Runner's ``model.to('cuda')`` does, with fake CUDA tensors (no GPU here)."""
    with mode:
        model._apply(lambda t: mode.from_tensor(t).to('cuda'))


def _pruned_teacher(teacher_ckpt):
    """The final stage's AMDDistill: teacher sliced to 0.5 in ``__init__``, on the CPU."""
    return test_algorithm._algorithm(teacher_ckpt, teacher_scale=0.5).train()


def test_teacher_pruned_in_init_runs_sliced_on_the_device_the_model_moved_to(teacher_ckpt, images):
    algo = _pruned_teacher(teacher_ckpt)
    expected, _ = algo._teacher_outputs(images)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    _to_fake_cuda(algo, mode)
    with mode:  # the closures' CPU indices raised "Expected all tensors to be on the same device" here
        logits, feats = algo._teacher_outputs(mode.from_tensor(images).to('cuda'))
    assert logits.device.type == 'cuda' and logits.shape == expected.shape
    assert [f.device.type for f in feats] == ['cuda', 'cuda']
    buffers = list(algo.teacher_pruner.slicer.buffers())
    assert len(buffers) > 0 and {b.device.type for b in buffers} == {'cuda'}  # the kept indices moved with the weights


def test_sliced_indices_are_buffers_outside_the_state_dict(teacher_ckpt):
    algo = _pruned_teacher(teacher_ckpt)
    slicer = algo.teacher_pruner.slicer
    assert algo.teacher.amd_slicer is slicer
    keep = algo.teacher_pruner.keep(0.5)
    for i, unit in enumerate(slicer.units):  # kept structures first, ascending
        assert torch.equal(slicer.index(i), torch.nonzero(keep[unit.name]).flatten())
    assert not any('amd_slicer' in k for k in algo.state_dict())  # checkpoints and resume are unchanged
    fresh = test_algorithm._algorithm(None, teacher_scale=0.5)
    fresh.load_state_dict(algo.state_dict(), strict=True)


def test_syncbn_conversion_reaches_the_pruned_teachers_bn_modules(teacher_ckpt, images):
    algo = _pruned_teacher(teacher_ckpt)
    expected, _ = algo._teacher_outputs(images)
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(algo)  # the Runner's sync_bn, after __init__ pruned the teacher
    logits, _ = algo._teacher_outputs(images)  # the closures kept the old BNs: the new ones got the sliced input
    assert torch.allclose(logits, expected, atol=1e-6)
    sliced_bns = [m for m in algo.teacher.modules()
                  if isinstance(m, torch.nn.SyncBatchNorm) and isinstance(vars(m).get('forward'), SlicedForward)]
    norms = {p for u in algo.teacher_pruner.slicer.units for p, role in u.producers if role == 'norm'}
    assert len(sliced_bns) == len(norms) > 0
    algo.teacher.train()  # a training SyncBN is not synchronised when sliced: a clear error, not wrong statistics
    with pytest.raises(NotImplementedError, match="candidate_mode='masked'"):
        algo.teacher(images, mode='tensor')


def test_a_deep_copy_slices_its_own_modules(teacher_ckpt, images):
    algo = _pruned_teacher(teacher_ckpt)
    expected, _ = algo._teacher_outputs(images)
    twin = copy.deepcopy(algo)  # e.g. an EMA model
    with torch.no_grad():
        for p in algo.teacher.parameters():
            p.mul_(2.0)  # the original changes; the copy must not see it
    assert torch.allclose(twin._teacher_outputs(images)[0], expected, atol=1e-6)
    for module in twin.teacher.modules():
        forward = vars(module).get('forward')
        if forward is not None:
            assert forward.module is module and forward.slicer is twin.teacher.amd_slicer
