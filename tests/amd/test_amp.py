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
