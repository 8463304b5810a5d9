"""AMD loss terms (METHODS.md §1.5) against independent references."""
import torch
import torch.nn.functional as F

from mmkd_ext.amd.losses import dkd, feature_mimic, logit_kd


def test_logit_kd_matches_hand_kl():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    tau = 2.0
    p, q = F.softmax(t / tau, 1), F.softmax(s / tau, 1)
    expected = tau ** 2 * (p * (p.log() - q.log())).sum(1).mean()
    assert torch.allclose(logit_kd(s, t, tau), expected)


def test_pixelwise_logit_kd_averages_over_pixels():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    per_pixel = (F.softmax(t, 1) * (F.log_softmax(t, 1) - F.log_softmax(s, 1))).sum(1)
    assert torch.allclose(logit_kd(s, t, 1.0), per_pixel.mean(), atol=1e-6)


def test_feature_mimic_is_mean_of_layer_mses():
    a = [torch.zeros(2, 3), torch.ones(2, 2)]
    b = [torch.ones(2, 3), torch.ones(2, 2) * 3]
    assert torch.allclose(feature_mimic(a, b), torch.tensor((1.0 + 4.0) / 2))


def test_dkd_matches_mmrazor_reference():
    from mmrazor.models.losses import DKDLoss
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    labels = torch.tensor([0, 2, 5, 1])
    ref = DKDLoss(tau=4.0, alpha=1.0, beta=8.0, reduction='batchmean', loss_weight=1.0)
    assert torch.allclose(dkd(s, t, labels, 1.0, 8.0, 4.0), ref(s, t, labels), atol=1e-5)
