"""The distiller genome (Eq. 1), its validation, and KDZeroLoss built from it."""
import random

import pytest
import torch

from mmkd_ext.kd_zero.genome import Genome, GenomeError, SearchSpace, sample_genome, validate
from mmkd_ext.kd_zero.hooks import check_losses
from mmkd_ext.kd_zero.losses import KDZeroLoss
from mmkd_ext.registry import MODELS


def test_genome_round_trips_through_a_plain_dict():
    g = Genome('feature', 'satt', 'local_r2', 'softmax_C', 'pearson', 5.0, 'focal', 8.0)
    d = g.to_dict()
    assert isinstance(d, dict) and Genome.from_dict(d) == g
    assert Genome.from_dict(dict(d, weight=5)) == g  # ints from configs become floats


def test_kl_genome_equals_mmrazor_kl_divergence_tau4():
    torch.manual_seed(0)
    s, t = torch.randn(8, 10, requires_grad=True), torch.randn(8, 10)
    ours = MODELS.build(dict(type='KDZeroLoss', genome=dict(knowledge='logits', t1='no', t2='no', t3='no',
                                                            distance='kl', weight=1, calibration='no', tau=4)))
    reference = MODELS.build(dict(type='KLDivergence', tau=4, loss_weight=1.0))
    assert torch.allclose(ours(s, t), reference(s, t), rtol=1e-6, atol=1e-7)


def test_unknown_operation_lists_the_valid_choices():
    with pytest.raises(GenomeError, match=r"t3='softmx_C'.*valid choices.*'softmax_C'"):
        KDZeroLoss(genome=dict(knowledge='logits', t3='softmx_C'))
    with pytest.raises(GenomeError, match=r"distance='l3'.*valid choices.*'l1'"):
        validate(Genome(distance='l3'))
    with pytest.raises(GenomeError, match='valid genes'):
        Genome.from_dict(dict(knowlege='logits'))


def test_operation_incompatible_with_knowledge_is_rejected_with_valid_choices():
    with pytest.raises(GenomeError) as err:
        validate(Genome(knowledge='logits', t2='local_r2'))
    msg = str(err.value)
    assert 'rank-2' in msg and "knowledge='logits'" in msg and "'norm_C'" in msg and "'local_r2'" not in msg.split(
        'valid choices here are')[1]
    # a rank-changing op upstream makes a spatial op invalid too
    with pytest.raises(GenomeError, match='after input > no > batch'):
        validate(Genome(knowledge='feature', t2='batch', t3='softmax_HW'))


def test_calibration_weights_reweight_per_sample():
    s, t = torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    labels = torch.tensor([1, 1])
    loss = KDZeroLoss(genome=dict(knowledge='logits', distance='l1', weight=1, calibration='conf', tau=1))
    # conf weights p_T[y] are equal -> normalised to 1 -> plain L1: sample 0 -> 0, sample 1 -> 1
    assert loss(s, t, gt_labels=labels).item() == pytest.approx(0.5)
    unnorm = KDZeroLoss(genome=dict(knowledge='logits', distance='l1', weight=1, calibration='conf', tau=1),
                        normalize_calibration=False)
    p = torch.softmax(torch.tensor([0.0, 1.0]), 0)[1].item()
    assert unnorm(s, t, gt_labels=labels).item() == pytest.approx(0.5 * p, rel=1e-5)


def test_multi_teacher_sums_the_single_teacher_losses():
    torch.manual_seed(1)
    s, t1, t2 = torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 6)
    loss = KDZeroLoss(genome=dict(knowledge='logits', t3='softmax_C', distance='kl', tau=4, calibration='entropy'))
    assert torch.allclose(loss(s, [t1, t2], s, [t1, t2]), loss(s, t1, s, t1) + loss(s, t2, s, t2))


def test_feature_maps_of_different_size_are_pooled_to_the_smaller():
    s, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)
    loss = KDZeroLoss(genome=dict(knowledge='feature', distance='l2', tau=1))
    expected = (torch.nn.functional.avg_pool2d(s, 2) - t).pow(2).mean()
    assert loss(s, t).item() == pytest.approx(expected.item(), rel=1e-5)


def test_channel_mismatch_points_to_a_connector():
    loss = KDZeroLoss(genome=dict(knowledge='feature', distance='l2'))
    with pytest.raises(ValueError, match='connector'):
        loss(torch.randn(2, 4, 3, 3), torch.randn(2, 8, 3, 3))


def _inputs(knowledge):
    if knowledge == 'feature':
        return torch.randn(4, 8, 6, 6), torch.randn(4, 8, 6, 6)
    return torch.randn(4, 10), torch.randn(4, 10)


@pytest.mark.parametrize('slot_typing', [True, False])
def test_every_sampled_genome_runs_forward_backward_or_is_rejected_with_a_reason(slot_typing):
    """Sampled genomes build a loss that gives a finite scalar and gradient on the student, or the loss raises
    a ValueError naming the problem before any training (none expected on these well-formed inputs)."""
    rng, space = random.Random(0), SearchSpace(slot_typing=slot_typing)
    torch.manual_seed(0)
    logits_s, logits_t, labels = torch.randn(4, 10), torch.randn(4, 10), torch.tensor([0, 1, 2, 3])
    non_finite = []
    for _ in range(150):
        genome = sample_genome(space, rng)
        loss = KDZeroLoss(genome=genome.to_dict())
        s, t = _inputs(genome.knowledge)
        s.requires_grad_(True)
        value = loss(s, t, logits_s, logits_t, labels)
        assert value.dim() == 0
        value.backward()
        assert s.grad is not None
        if not (torch.isfinite(value) and torch.isfinite(s.grad).all()):
            # left to the search's loss-rejection protocol, which must name the reason
            assert 'non-finite' in check_losses({'distill.loss_kdzero': value.item(), 'student.loss': 1.0}) or \
                not torch.isfinite(s.grad).all()
            non_finite.append(str(genome))
    assert len(non_finite) < 15, non_finite
