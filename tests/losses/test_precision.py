"""Every mmkd_ext loss computes in fp32 under ``torch.autocast`` with 16-bit inputs (issue 13 item 3)."""
import pytest
import torch

from mmkd_ext.acmkd.attention import AttentionMaps
from mmkd_ext.acmkd.losses import dml_losses, logit_losses, ssd_loss, stagewise_attention_loss
from mmkd_ext.amd.losses import dkd, feature_mimic, logit_kd
from mmkd_ext.fkd.algorithm import fkd_loss
from mmkd_ext.kd_zero.losses import KDZeroLoss
from mmkd_ext.losses import kd_kl_divergence, soft_cross_entropy
from mmkd_ext.vrm.losses import VRMLoss

G = torch.Generator().manual_seed(0)


def _randn(*shape, scale=3.0):
    return torch.randn(*shape, generator=G) * scale


def _cast(x, dtype):
    """Floating tensors of a (nested) structure cast to ``dtype`` (independent of the code under test)."""
    if torch.is_tensor(x):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, AttentionMaps):
        return AttentionMaps(_cast(x.channel, dtype), _cast(x.spatial, dtype), x.spatial_hw, _cast(x.refined, dtype))
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(v, dtype) for v in x)
    return x


def _tensors(out):
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    raise TypeError(type(out))


def _maps(b, c, hw):
    h, w = hw
    return AttentionMaps(_randn(b, c).sigmoid(), _randn(b, h * w).sigmoid(), hw, None)


LOGITS, PROBS = _randn(4, 5), _randn(4, 5).softmax(1)
S2, T2, LABELS = _randn(8, 5), _randn(8, 5), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
FEATS_S, FEATS_T = [_randn(2, 3, 4, 4)], [_randn(2, 3, 4, 4)]
T_MAPS, S_MAPS = [_maps(2, 8, (4, 4))], [[_maps(2, 4, (2, 2))], [_maps(2, 8, (4, 4))]]
torch.manual_seed(0)
VRM = VRMLoss(num_classes=5)
KDZ_FEAT = KDZeroLoss(genome=dict(knowledge='feature', t1='satt', t3='softmax_C', distance='pearson', tau=4.0))
KDZ_LOGITS = KDZeroLoss(genome=dict(knowledge='logits', t3='softmax_C', distance='kl', tau=4, calibration='entropy'))

CASES = {
    'soft_cross_entropy': (soft_cross_entropy, (LOGITS, PROBS)),
    'kd_kl_divergence': (lambda s, t: kd_kl_divergence(s, t, 4.0), (LOGITS, _randn(4, 5))),
    'fkd_soft_ce': (lambda s, p: fkd_loss(s, p, 2.0), (LOGITS, PROBS)),
    'amd_logit_kd': (logit_kd, (_randn(2, 5, 3, 3), _randn(2, 5, 3, 3))),
    'amd_dkd': (dkd, (S2, T2, LABELS)),
    'amd_feature_mimic': (feature_mimic, (FEATS_S, FEATS_T)),
    'acmkd_logit_losses': (lambda a, b, t: logit_losses(dict(a=a, b=b), t, LABELS), (S2, _randn(8, 5), T2)),
    'acmkd_ssd_loss': (lambda w, s: ssd_loss(w, [s], LABELS), (S2, T2)),
    'acmkd_dml_losses': (lambda a, b: dml_losses(dict(a=a, b=b)), (S2, T2)),
    'acmkd_attention_similarity': (stagewise_attention_loss, (T_MAPS, S_MAPS)),
    'vrm_gram_relations': (VRM, (S2, T2)),
    'kd_zero_feature': (KDZ_FEAT, (_randn(2, 4, 4, 4), _randn(2, 4, 4, 4))),
    'kd_zero_logits_kl': (KDZ_LOGITS, (S2, T2)),
}


@pytest.mark.parametrize('name', list(CASES))
def test_loss_is_fp32_under_bf16_autocast_and_equals_the_fp32_result(name):
    fn, inputs = CASES[name]
    low = _cast(inputs, torch.bfloat16)  # what a bf16 autocast forward hands the loss
    expected = _tensors(fn(*_cast(low, torch.float32)))  # fp32 math on the same (rounded) values
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = _tensors(fn(*low))
    assert [t.dtype for t in got] == [torch.float32] * len(expected)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-6), (name, g, e)


def test_gradient_reaches_the_bf16_input_as_bf16():
    logits = LOGITS.bfloat16().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        kd_kl_divergence(logits, _randn(4, 5).bfloat16(), 4.0).backward()
    assert logits.grad.dtype == torch.bfloat16 and torch.isfinite(logits.grad.float()).all()
