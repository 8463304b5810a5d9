"""AMDDistill with AmpOptimWrapper (``tools/amd/run.py --amp``): teacher and every candidate under autocast, each
candidate's scaled backward, one unscaled step that matches the fp32 step up to bf16 rounding."""
import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmpretrain.structures import DataSample

from mmkd_ext.amd.algorithm import AMDDistill
from mmkd_ext.registry import MODELS

from .conftest import INPUT, cifar_resnet

PRE = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)
CFG = dict(cifar_resnet('resnet8'), data_preprocessor=PRE)


@pytest.fixture
def teacher_ckpt(tmp_path):
    torch.manual_seed(0)
    path = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(CFG).state_dict()}, path)
    return path


def _algorithm(ckpt):
    algo = AMDDistill(architecture=CFG, teacher=CFG, teacher_ckpt=ckpt, scales=[0.8, 0.5],
                      pruner=dict(input_shape=INPUT), feature_modules=['backbone.layer3'])
    return algo.train()


def _batch():
    g = torch.Generator().manual_seed(2)
    return dict(inputs=[torch.randint(0, 256, INPUT, generator=g, dtype=torch.uint8) for _ in range(4)],
                data_samples=[DataSample().set_gt_label(i) for i in range(4)])


def test_amp_step_autocasts_teacher_and_candidates_and_unscales_the_update(teacher_ckpt, monkeypatch):
    fp32, amp = _algorithm(teacher_ckpt), _algorithm(teacher_ckpt)
    before = {n: p.detach().clone() for n, p in fp32.architecture.named_parameters()}
    fp32.train_step(_batch(), OptimWrapper(torch.optim.SGD(fp32.architecture.parameters(), lr=0.1)))
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)  # CPU autocast is real
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(amp.architecture.parameters(), lr=0.1), dtype='bfloat16')
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 12)  # a CPU scaler that really scales
    dtypes = []
    for net in (amp.teacher, amp.architecture):
        net.head.fc.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
    amp.train_step(_batch(), wrapper)
    assert dtypes == [torch.bfloat16] * 3  # the teacher once, then both candidates, all under autocast
    delta = [torch.cat([(dict(m.architecture.named_parameters())[n].detach() - before[n]).flatten()
                        for n in before if n.startswith('head')]) for m in (fp32, amp)]
    assert torch.nn.functional.cosine_similarity(delta[0], delta[1], dim=0) > 0.98
    assert float(delta[1].norm() / delta[0].norm()) == pytest.approx(1.0, abs=0.1)


# ------------------------------------------------------------------ issue 23 item 4: AMD's stages stepped with a scaler
STAGES = dict(joint=dict(scales=[0.8, 0.5]),  # joint_1: every candidate below the full teacher
              final=dict(scales=[0.5], teacher_scale=0.8),  # final: the target, taught by the sliced TA
              final_fixed=dict(scales=None, teacher_scale=0.5))  # final with a fixed student (supp. Table 7)


def _amp_wrapper(algo, monkeypatch, clip):
    """MMEngine's AmpOptimWrapper on CPU, with a gradient scaler that really scales and skips.

    mmengine 0.10.7 refuses to build it without a GPU and would take ``torch.cuda.amp.GradScaler``, which disables
    itself on CPU; ``torch.amp.GradScaler('cpu')`` runs the same unscale / inf check / skip / backoff logic.
    """
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(algo.parameters(), lr=0.1),  # frozen teacher included,
                              dtype='bfloat16', clip_grad=dict(max_norm=1.0) if clip else None)  # as the Runner builds
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=2.0 ** 12)
    return wrapper


@pytest.mark.parametrize('clip', [False, True], ids=['no_clip', 'clip_grad'])
@pytest.mark.parametrize('stage', list(STAGES))
def test_amp_stage_skips_an_inf_gradient_step_and_keeps_training(teacher_ckpt, monkeypatch, stage, clip):
    algo = AMDDistill(architecture=CFG, teacher=CFG, teacher_ckpt=teacher_ckpt, pruner=dict(input_shape=INPUT),
                      feature_modules=['backbone.layer3'], **STAGES[stage]).train()
    wrapper = _amp_wrapper(algo, monkeypatch, clip)
    params = dict(algo.architecture.named_parameters())
    for it in range(3):
        before, scale = {n: p.detach().clone() for n, p in params.items()}, wrapper.loss_scaler.get_scale()
        poison = params['head.fc.weight'].register_hook(lambda g: torch.full_like(g, float('inf'))) if it == 1 else None
        log = algo.train_step(_batch(), wrapper)  # no "No inf checks were recorded for this optimizer"
        if poison is not None:
            poison.remove()
        assert all(bool(torch.isfinite(v)) for v in log.values()), log
        moved = [n for n, p in params.items() if not torch.equal(p.detach(), before[n])]
        if it == 1:  # the inf gradient: step skipped, every parameter unchanged, scale backed off
            assert moved == [] and wrapper.loss_scaler.get_scale() == scale * 0.5
        else:  # a finite step updates the weights; the scale grows only after 2000 clean steps
            assert 'head.fc.weight' in moved and wrapper.loss_scaler.get_scale() == scale
