"""Each KD-Zero operation (Table 1) against a value computed by hand."""
import math

import pytest
import torch

from mmkd_ext.kd_zero import operations as ops

X2 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (B=2, C=2)


def test_min_max_uses_global_range():
    assert torch.allclose(ops.min_max(X2), torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]), atol=1e-6)


def test_batchnorm_standardises_each_channel_over_the_batch():
    # channel 0: values 1, 3 -> mean 2, biased std 1 -> -1, 1
    out = ops.batchnorm(X2)
    assert torch.allclose(out, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-4)


def test_norm_c_and_norm_n():
    assert torch.allclose(ops.norm_c(X2)[0], torch.tensor([1.0, 2.0]) / math.sqrt(5))
    assert torch.allclose(ops.norm_n(X2)[:, 0], torch.tensor([1.0, 3.0]) / math.sqrt(10))


def test_norm_hw_normalises_each_channel_map():
    x = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]]]])
    assert torch.allclose(ops.norm_hw(x), torch.tensor([[[[0.6, 0.8], [0.0, 0.0]]]]))


def test_softmax_hw_sums_to_one_per_channel():
    x = torch.tensor([[[[0.0, math.log(3.0)]]]])  # one channel, 1x2 map
    assert torch.allclose(ops.softmax_hw(x), torch.tensor([[[[0.25, 0.75]]]]))


def test_softmax_and_logsoftmax_over_channels_and_batch():
    e = math.exp(1)
    assert torch.allclose(ops.softmax_c(X2)[0], torch.tensor([1 / (1 + e), e / (1 + e)]))
    e2 = math.exp(2)
    assert torch.allclose(ops.softmax_n(X2)[:, 0], torch.tensor([1 / (1 + e2), e2 / (1 + e2)]))
    assert torch.allclose(ops.logsoftmax_n(X2)[:, 0], torch.log(torch.tensor([1 / (1 + e2), e2 / (1 + e2)])))
    assert torch.allclose(ops.logsoftmax_hw(torch.zeros(1, 1, 2, 2)), torch.full((1, 1, 2, 2), math.log(0.25)))


def test_activations():
    x = torch.tensor([-1.0, 0.0, 4.0])
    assert torch.allclose(ops.TRANSFORMS['pow2'].fn(x), torch.tensor([1.0, 0.0, 16.0]))
    assert torch.allclose(ops.TRANSFORMS['pow4'].fn(x), torch.tensor([1.0, 0.0, 256.0]))
    assert torch.allclose(ops.safe_sqrt(x), torch.tensor([0.0, 0.0, 2.0]), atol=1e-4)
    assert torch.allclose(ops.signed_log(torch.tensor([-math.e, math.e])), torch.tensor([-1.0, 1.0]), atol=1e-6)
    assert torch.allclose(ops.TRANSFORMS['leaky'].fn(x), torch.tensor([-0.01, 0.0, 4.0]))
    sp = math.log(1 + math.exp(1.0))
    assert ops.mish(torch.tensor(1.0)).item() == pytest.approx(math.tanh(sp))
    assert torch.allclose(ops.scale_half(x), torch.tensor([0.0, 0.5, 2.5]))


def test_max_pool_r2_pads_odd_maps():
    x = torch.arange(9.0).view(1, 1, 3, 3)  # padded to 4x4 with zeros
    assert torch.equal(ops.max_pool_r(x, 2), torch.tensor([[[[4.0, 5.0], [7.0, 8.0]]]]))


def test_multi_scale_concatenates_three_pools():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = ops.multi_scale(x)
    assert out.shape == (1, 1, 16 + 4 + 1)
    assert out[0, 0, 16:].tolist() == [5.0, 7.0, 13.0, 15.0, 15.0]


def test_local_r2_makes_each_patch_a_channel():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = ops.local_patches(x, 2)
    assert out.shape == (1, 4, 2, 2)
    assert out[0, 1].tolist() == [[2.0, 3.0], [6.0, 7.0]]  # top-right patch


def test_flatten_ops():
    x = torch.zeros(2, 3, 4, 5)
    assert ops.flatten_batch(x).shape == (2, 60)
    assert ops.flatten_channel(x).shape == (2, 3, 20)


def test_spatial_attention_is_x_times_sqrt_of_hw_softmax():
    x = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]]]])  # (1, 2, 1, 2): mean_c|x| = [1, 0]
    a = torch.softmax(torch.tensor([2.0, 0.0]), 0) * 2  # HW * softmax(mean / 0.5)
    expected = x * a.sqrt().view(1, 1, 1, 2)
    assert torch.allclose(ops.spatial_attention(x), expected)


def test_channel_attention_on_maps_and_logits():
    x = torch.tensor([[[[2.0]], [[0.0]]]])  # (1, 2, 1, 1)
    a = 2 * torch.softmax(torch.tensor([4.0, 0.0]), 0)
    assert torch.allclose(ops.channel_attention(x).flatten(), torch.tensor([2.0, 0.0]) * a.sqrt())
    assert torch.allclose(ops.channel_attention(X2)[0], 2 * torch.softmax(torch.tensor([2.0, 4.0]), 0))


def test_batch_attention():
    assert torch.allclose(ops.batch_attention(X2)[:, 0], 2 * torch.softmax(torch.tensor([2.0, 6.0]), 0))


def test_gram_matrices():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (1, C=2, L=2)
    assert torch.allclose(ops.gram_bmm(x), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 2)
    assert torch.allclose(ops.gram_mm(X2), torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 2)


def test_stochastic_ops_share_one_mask_between_student_and_teacher():
    torch.manual_seed(0)
    s = torch.ones(4, 3, 5, 5)
    for name in ('mask', 'drop'):
        a, b = ops.transform_pair(name, s, s.clone())
        assert torch.equal(a, b)
        assert (a == 0).any()


def test_mask_zeroes_about_65_percent_of_positions():
    torch.manual_seed(0)
    m = ops.spatial_mask(torch.zeros(64, 8, 16, 16))
    assert m.shape == (64, 1, 16, 16)
    assert abs(1 - m.mean().item() - 0.65) < 0.02


# ---------------------------------------------------------------- distances
A = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
B = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
W1 = torch.ones(2)


def test_elementwise_distances():
    assert ops.l1_distance(A, B, W1).item() == pytest.approx(1.0)  # |diffs| 0,2,0,2 -> mean 1
    assert ops.l2_distance(A, B, W1).item() == pytest.approx(2.0)  # 0,4,0,4 -> 2
    assert ops.smooth_l1_distance(A, B, W1).item() == pytest.approx(0.75)  # 0,1.5,0,1.5 -> 0.75


def test_weights_reweight_samples():
    w = torch.tensor([2.0, 0.0])
    assert ops.l1_distance(A, B, w).item() == pytest.approx(1.0)  # sample0 mean 1 * 2 / 2 + 0


def test_kl_distance_in_raw_prob_and_logprob_space():
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3.0)]])
    pb = torch.tensor([0.25, 0.75])
    expected = (pb * (pb.log() - math.log(0.5))).sum().item()
    assert ops.kl_distance(a, b, torch.ones(1), 'raw').item() == pytest.approx(expected, rel=1e-5)
    pa = torch.tensor([[0.5, 0.5]])
    assert ops.kl_distance(pa, pb[None], torch.ones(1), 'prob').item() == pytest.approx(expected, rel=1e-5)
    assert ops.kl_distance(pa.log(), pb[None].log(), torch.ones(1), 'logprob').item() == pytest.approx(
        expected, rel=1e-5)


def test_hard_distance_is_ce_to_teacher_argmax():
    a = torch.tensor([[0.0, math.log(3.0)]])
    b = torch.tensor([[5.0, 1.0]])  # argmax 0 -> -log(0.25)
    assert ops.hard_distance(a, b, torch.ones(1)).item() == pytest.approx(math.log(4.0), rel=1e-5)


def test_cosine_and_pearson_distances():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    assert ops.cosine_distance(a, b, torch.ones(1)).item() == pytest.approx(1 - 1 / math.sqrt(2))
    a, b = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])
    assert ops.pearson_distance(a, b, torch.ones(1)).item() == pytest.approx(2.0)  # correlation -1
    assert ops.pearson_distance(a, 2 * a + 5, torch.ones(1)).item() == pytest.approx(0.0, abs=1e-6)


def test_correlation_distance_by_hand():
    a = torch.tensor([[1.0], [-1.0]])
    b = torch.tensor([[-1.0], [1.0]])  # standardised columns perfectly anti-correlated: c = -s^2 ~ -0.5
    # unbiased std over 2 samples = sqrt(2): a^ = [1/sqrt2, -1/sqrt2], c = mean(a^ b^) = -0.5
    expected = math.log2(((-0.5 - 1) ** 2) ** 1.01)
    assert ops.correlation_distance(a, b, torch.ones(2)).item() == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------- calibrations
LS = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
LT = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
Y = torch.tensor([1, 0])


def test_calibrations_by_hand():
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)
    assert torch.allclose(ops.calib_entropy(LS, LT), torch.tensor([h, 1.0]), atol=1e-6)
    assert torch.allclose(ops.calib_conf(LS, LT, Y), torch.tensor([0.75, 0.5]))
    ce_s0, ce_t0 = math.log(2), -math.log(0.75)
    ce_s1, ce_t1 = -math.log(math.exp(2) / (math.exp(2) + 1)), math.log(2)
    expected = [1 - math.exp(-ce_s0 / ce_t0), 1 - math.exp(-ce_s1 / ce_t1)]
    assert torch.allclose(ops.calib_focal(LS, LT, Y), torch.tensor(expected), atol=1e-5)
    p = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    cos = (p[0] @ p[1]) / (p[0].norm() * p[1].norm())
    assert ops.calib_sim(LS, LT)[0].item() == pytest.approx(1 - cos.item(), rel=1e-5)
    assert torch.equal(ops.calib_none(LS, LT), torch.ones(2))


def test_calibration_weights_are_normalised_to_mean_one():
    w = ops.calibration_weights('conf', LS, LT, Y)
    assert torch.allclose(w, torch.tensor([0.75, 0.5]) / 0.625)


def test_calibration_weights_of_zero_mean_are_ones_and_need_no_host_sync(monkeypatch):
    """All-zero weights fall back to ones; the choice is a tensor op, so the normalisation runs on fake CUDA
    tensors (a Python branch on the mean stopped the fake-CUDA device check there, and waited for the GPU every
    step)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    monkeypatch.setitem(ops.CALIBRATIONS, 'zero', lambda s, t, y: torch.zeros(s.shape[0]))
    assert torch.equal(ops.calibration_weights('zero', LS, LT, Y), torch.ones(2))
    with FakeTensorMode() as mode:
        w = ops.calibration_weights('conf', mode.from_tensor(LS).cuda(), mode.from_tensor(LT).cuda(),
                                    mode.from_tensor(Y).cuda())
    assert w.shape == (2,) and w.device.type == 'cuda'


def test_label_calibrations_without_labels_say_how_to_fix():
    with pytest.raises(ValueError, match="gt_labels"):
        ops.calibration_weights('focal', LS, LT, None)
