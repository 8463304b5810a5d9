"""ACMKD loss terms (Eqs. 1-3, 5-8) on hand-computed tensors."""
import math

import pytest
import torch

from mmkd_ext.acmkd.attention import AttentionMaps
from mmkd_ext.acmkd.losses import (
    attention_distance,
    attention_similarity_loss,
    cosine_distance,
    dml_losses,
    logit_losses,
    multilinear_distance,
    ssd_loss,
    stagewise_attention_loss,
)

E1, E2 = torch.tensor([[1., 0.]]), torch.tensor([[0., 1.]])


def test_cosine_distance_of_orthogonal_parallel_and_opposite_maps():
    assert cosine_distance(E1, E2).item() == pytest.approx(1.0)
    assert cosine_distance(torch.tensor([[1., 1.]]), torch.tensor([[2., 2.]])).item() == pytest.approx(0.0, abs=1e-7)
    assert cosine_distance(E1, -E1).item() == pytest.approx(2.0)


def test_multilinear_distance_is_literal_four_way_product():
    u = torch.tensor([[1., 1.]])  # unit vector (1, 1)/sqrt(2) after normalisation
    expected = 1 - 2 * (1 / math.sqrt(2)) ** 4
    assert multilinear_distance([u, u, u, u]).item() == pytest.approx(expected)
    assert multilinear_distance([E1, E1, E1]).item() == pytest.approx(0.0)


def test_pairwise_distance_averages_teacher_student_pairs():
    assert attention_distance(E1, [E1, E2], 'pairwise').item() == pytest.approx(0.5)


def test_pairwise_all_distance_adds_student_student_pairs():
    # pairs: T-s1 0, T-s2 1, s1-s2 1
    assert attention_distance(E1, [E1, E2], 'pairwise_all').item() == pytest.approx(2 / 3)


def test_attention_distance_detaches_teacher():
    teacher = E1.clone().requires_grad_(True)
    student = E2.clone().requires_grad_(True)
    attention_distance(teacher, [student]).backward()
    assert teacher.grad is None and student.grad is not None


def test_attention_similarity_loss_eq6():
    rho_c = [torch.tensor(0.2), torch.tensor(0.4)]
    rho_s = [torch.tensor(0.6), torch.tensor(0.0)]
    assert attention_similarity_loss(rho_c, rho_s).item() == pytest.approx((0.8 + 0.4) / 2)


def test_stagewise_attention_loss_aligns_student_maps_to_teacher():
    teacher = AttentionMaps(torch.tensor([[0., 0.25, 0.75, 1.]]), torch.tensor([[1.5]]), (1, 1), None)
    # student channel (0, 1) interpolates to the teacher's vector; its 2x2 spatial map averages to 1.5
    student = AttentionMaps(torch.tensor([[0., 1.]]), torch.tensor([[0., 1., 2., 3.]]), (2, 2), None)
    assert stagewise_attention_loss([teacher], [[student]]).item() == pytest.approx(0.0, abs=1e-6)
    other = AttentionMaps(torch.tensor([[1., 0.]]), torch.tensor([[-1., -1., -1., -1.]]), (2, 2), None)
    ch = 1 - 0.375 / 1.625  # (0, .25, .75, 1) . (1, .75, .25, 0) / (|.| |.|), both norms sqrt(1.625)
    # channel: interpolated (1, .75, .25, 0); spatial: cos(1.5, -1) = -1 -> distance 2
    assert stagewise_attention_loss([teacher], [[other]]).item() == pytest.approx((ch + 2) / 2, rel=1e-5)


def test_logit_losses_eq1_to_3_tau1():
    s = torch.tensor([[0., 0.]])
    t = torch.tensor([[math.log(3.), 0.]])  # softmax -> (0.75, 0.25)
    terms = logit_losses({'a': s}, t, torch.tensor([0]), tau=1.0, lambda_ce=2.0, lambda_kd=3.0)['a']
    assert terms['loss_ce'].item() == pytest.approx(2 * math.log(2.))
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert terms['loss_kd'].item() == pytest.approx(3 * kl)


def test_logit_losses_scale_kd_by_tau_squared():
    s = torch.tensor([[0., 0.]])
    t = torch.tensor([[2 * math.log(3.), 0.]])  # at tau=2: softmax -> (0.75, 0.25)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert logit_losses({'a': s}, t, torch.tensor([0]), tau=2.0)['a']['loss_kd'].item() == pytest.approx(4 * kl)


def test_ssd_loss_sums_kd_from_every_strong_student():
    weak = torch.tensor([[0., 0.]])
    strong = [torch.tensor([[math.log(3.), 0.]]), torch.tensor([[0., math.log(3.)]])]
    terms = ssd_loss(weak, strong, torch.tensor([1]), lambda_ce=1.0, lambda_kd=0.5)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)  # the same for both (symmetric)
    assert terms['loss_ssd_ce'].item() == pytest.approx(math.log(2.))
    assert terms['loss_ssd_kd'].item() == pytest.approx(0.5 * 2 * kl)


def test_ssd_loss_sends_no_gradient_to_strong_students():
    weak = torch.randn(3, 4, requires_grad=True)
    strong = [torch.randn(3, 4, requires_grad=True) for _ in range(2)]
    sum(ssd_loss(weak, strong, torch.tensor([0, 1, 2])).values()).backward()
    assert weak.grad is not None and weak.grad.abs().sum() > 0
    assert all(s.grad is None for s in strong)


def test_ssd_loss_needs_a_strong_student():
    with pytest.raises(ValueError, match='stronger student'):
        ssd_loss(torch.zeros(1, 2), [], torch.tensor([0]))


def test_dml_losses_pull_each_student_to_the_others():
    a = torch.tensor([[0., 0.]])
    b = torch.tensor([[math.log(3.), 0.]])
    out = dml_losses({'a': a, 'b': b})
    assert out['a'].item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert out['b'].item() == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))
