"""Fitness pieces: linear CKA via HSIC, sharpness gap, validation CE, population z-scoring."""
import math

import pytest
import torch

from mmkd_ext.kd_zero.fitness import linear_cka, population_fitness, raw_fitness, sharpness_gap, validation_ce


def test_cka_of_a_representation_with_itself_is_one():
    torch.manual_seed(0)
    x = torch.randn(50, 8)
    assert linear_cka(x, x).item() == pytest.approx(1.0, abs=1e-6)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    torch.manual_seed(0)
    x, y = torch.randn(60, 6), torch.randn(60, 5)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    base = linear_cka(x, y).item()
    assert linear_cka(x @ q, y).item() == pytest.approx(base, rel=1e-5)
    assert linear_cka(3.7 * x, 0.2 * y).item() == pytest.approx(base, rel=1e-5)


def test_cka_by_hand():
    # X = [1,-1,0], Y = [1,0,-1] (already centred, 1-D): CKA = (x.y)^2 / (|x|^2 |y|^2) = 1 / 4
    x, y = torch.tensor([[1.0], [-1.0], [0.0]]), torch.tensor([[1.0], [0.0], [-1.0]])
    assert linear_cka(x, y).item() == pytest.approx(0.25, rel=1e-6)


def test_sharpness_gap_by_hand():
    s = torch.zeros(2, 3)  # logsumexp = log 3
    t = torch.tensor([[0.0, 0.0, math.log(6.0)], [0.0, 0.0, math.log(6.0)]])  # log(1 + 1 + 6) = log 8
    assert sharpness_gap(s, t).item() == pytest.approx(math.log(8) - math.log(3), rel=1e-6)
    assert sharpness_gap(t, s).item() == pytest.approx(math.log(8) - math.log(3), rel=1e-6)  # [R] absolute


def test_validation_ce_by_hand():
    assert validation_ce(torch.zeros(2, 4), torch.tensor([0, 3])).item() == pytest.approx(math.log(4))


def test_raw_fitness_is_ce_plus_gap_minus_cka():
    assert raw_fitness(dict(ce=1.0, sharpness_gap=0.5, cka=0.75)) == pytest.approx(0.75)


def test_z_scored_fitness_ranks_a_dominating_candidate_first():
    terms = [dict(ce=1.0, sharpness_gap=0.1, cka=0.9), dict(ce=2.0, sharpness_gap=0.3, cka=0.5),
             dict(ce=1.5, sharpness_gap=0.2, cka=0.7)]
    scores = population_fitness(terms, normalize=True)
    assert scores[0] < scores[2] < scores[1]
    assert scores[0] == pytest.approx(-3 * math.sqrt(1.5))  # each term z = -sqrt(3/2)
