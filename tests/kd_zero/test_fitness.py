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


def test_segmentation_terms_treat_labelled_pixels_as_samples():
    from mmkd_ext.kd_zero.fitness import fitness_terms, pixel_sums, segmentation_fitness_terms
    torch.manual_seed(0)
    logits_s, logits_t = torch.randn(2, 5, 4, 6), 3 * torch.randn(2, 5, 4, 6)
    labels = torch.randint(0, 5, (2, 4, 6))
    labels[0, :2] = 255  # unlabelled pixels are left out
    # accumulate image by image, as the proxy does
    sums = {}
    for i in range(2):
        for k, v in pixel_sums(logits_s[i], logits_t[i], labels[i:i + 1]).items():
            sums[k] = sums.get(k, 0.0) + v
    emb_s, emb_t = torch.randn(2, 7), torch.randn(2, 3)
    terms = segmentation_fitness_terms(sums, emb_s, emb_t)
    valid = labels.flatten() != 255
    rows_s = logits_s.permute(0, 2, 3, 1).reshape(-1, 5)[valid]
    rows_t = logits_t.permute(0, 2, 3, 1).reshape(-1, 5)[valid]
    noise = torch.randn(len(rows_s), 2)  # the CKA inputs of the reference are irrelevant here
    ref = fitness_terms(rows_s, rows_t, noise, noise, labels.flatten()[valid])
    assert sums['pixels'] == 48 - 12
    for key in ('ce', 'sharpness_gap', 'accuracy'):
        assert terms[key] == pytest.approx(ref[key], rel=1e-5)
    assert terms['cka'] == pytest.approx(linear_cka(emb_s, emb_t).item())


def test_segmentation_terms_reject_bad_input():
    from mmkd_ext.kd_zero.fitness import pixel_sums, segmentation_fitness_terms
    with pytest.raises(ValueError, match='label resolution'):
        pixel_sums(torch.randn(5, 4, 6), torch.randn(5, 4, 6), torch.zeros(8, 12))
    empty = pixel_sums(torch.randn(5, 2, 2), torch.randn(5, 2, 2), torch.full((2, 2), 255))
    with pytest.raises(ValueError, match='no labelled pixel'):
        segmentation_fitness_terms(empty, torch.randn(3, 2), torch.randn(3, 2))
