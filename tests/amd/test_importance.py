"""Importance scores E|dL/dmask| (supp. Eq. 3) against hand-computed gradients."""
import pytest
import torch
from torch import nn

from mmkd_ext.amd.importance import estimate_importance
from mmkd_ext.amd.pruning import MaskSet, PrunableUnit


class TwoHeadModel(nn.Module):
    """y = w . (head-masked x): two "heads" of width 2 feeding a bias-free projection."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 1, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.tensor([[1., -2., 3., 0.5]]))

    def forward(self, x):
        return self.proj(x).squeeze(-1)


def _setup():
    model = TwoHeadModel()
    unit = PrunableUnit(name='attn', kind='head', size=2, stage=0, consumer='proj', dim=-1, width=2)
    return model, MaskSet(model, [unit])


X = torch.tensor([[1., 1., 1., 2.], [-1., 0., -1., 0.]])  # two examples


def test_sample_importance_is_mean_absolute_per_example_gradient():
    model, masks = _setup()
    scores = estimate_importance(masks, [X], lambda x: model(x), granularity='sample')
    # dL_n/dpsi_i = sum_{j in head i} w_j x_nj: head0: [1-2, -1] = [-1, -1]; head1: [3+1, -3] = [4, -3]
    assert torch.allclose(scores['attn'], torch.tensor([(1 + 1) / 2, (4 + 3) / 2]))


def test_batch_importance_is_absolute_mean_gradient():
    model, masks = _setup()
    scores = estimate_importance(masks, [X], lambda x: model(x), granularity='batch')
    assert torch.allclose(scores['attn'], torch.tensor([abs(-1 - 1) / 2, abs(4 - 3) / 2]))


def test_importance_averages_over_batches():
    model, masks = _setup()
    scores = estimate_importance(masks, [X[:1], X[1:]], lambda x: model(x), granularity='sample')
    assert torch.allclose(scores['attn'], torch.tensor([1.0, 3.5]))


def test_importance_leaves_masks_at_one_and_without_grad():
    model, masks = _setup()
    estimate_importance(masks, [X], lambda x: model(x))
    assert torch.equal(masks.masks['attn'], torch.ones(2)) and not masks.masks['attn'].requires_grad


def test_importance_rejects_batch_mean_losses():
    model, masks = _setup()
    with pytest.raises(ValueError, match=r'per-example losses \(B,\)'):
        estimate_importance(masks, [X], lambda x: model(x).mean())
