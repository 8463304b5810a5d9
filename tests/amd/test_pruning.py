"""Masks, ranking, FLOPs scale, nestedness and physical removal (METHODS.md §1.3)."""

import pytest
import torch
from torch import nn

from mmkd_ext.amd.flops import CostModel, candidate_scales, total_flops
from mmkd_ext.amd.pruner import AMDPruner
from mmkd_ext.amd.pruning import (
    MaskSet,
    densify,
    find_units,
    keep_is_nested,
    l1_filter_scores,
    l2_normalise,
    rank,
)

from .conftest import INPUT, build, cifar_resnet, tiny_bottleneck_resnet, tiny_swin, tiny_vit


@pytest.mark.parametrize(
    "cfg", [tiny_vit, lambda: cifar_resnet("resnet8"), tiny_swin], ids=["vit", "cifar_resnet", "swin"]
)
def test_all_ones_masks_equal_unpruned_model(cfg, images):
    model = build(cfg())
    expected = model(images)
    masks = MaskSet(model, find_units(model))
    masks.requires_grad(True)  # forces the multiplication path of every hook
    got = model(images)
    assert torch.allclose(got, expected, atol=1e-6)


def test_pruning_reaches_target_scale_within_tolerance_by_mmengine_count():
    model = build(cifar_resnet("resnet20"))
    pruner = AMDPruner(model, INPUT, scale_tol=0.01)
    pruner.set_scores(pruner.l1_scores(model))
    target = 0.5
    solution = pruner.solve(target)
    assert abs(solution.scale - target) <= 0.02
    teacher_flops = total_flops(model, (torch.randn(1, *INPUT),))
    pruner.densify(model, target)
    measured = total_flops(model, (torch.randn(1, *INPUT),)) / teacher_flops  # MMEngine on the smaller net
    assert abs(measured - target) <= 0.02
    assert measured == pytest.approx(solution.scale, rel=1e-6)


def test_vit_cost_model_matches_mmengine_count_of_pruned_model():
    model = build(tiny_vit())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores({u.name: torch.rand(u.size, generator=torch.Generator().manual_seed(3)) for u in pruner.units})
    predicted = pruner.solve(0.6).scale
    teacher_flops = pruner.cost.total
    pruner.densify(model, 0.6)
    assert total_flops(model, (torch.randn(1, *INPUT),)) / teacher_flops == pytest.approx(predicted, rel=1e-6)


def test_candidate_masks_are_nested():
    model = build(tiny_vit())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores({u.name: torch.rand(u.size, generator=torch.Generator().manual_seed(5)) for u in pruner.units})
    scales = candidate_scales(0.45, 9)
    keeps = [pruner.keep(s) for s in scales]
    for small, large in zip(keeps[1:], keeps[:-1]):
        assert keep_is_nested(small, large)
    assert sum(int(k.sum()) for k in keeps[-1].values()) < sum(int(k.sum()) for k in keeps[0].values())


def test_l2_normalisation_is_layer_wise():
    out = l2_normalise({"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([0.0, 2.0])})
    assert torch.allclose(out["a"], torch.tensor([0.6, 0.8]))
    assert torch.allclose(out["b"], torch.tensor([0.0, 1.0]))


def test_global_ranking_removes_lowest_normalised_scores_and_keeps_one_per_layer():
    model = build(tiny_vit())
    units = [u for u in find_units(model) if u.kind == "head"]
    # layer 0 normalised: [.1,.2,.4,.89...] ; layer 1 is one dominant head
    scores = {units[0].name: torch.tensor([1.0, 2.0, 4.0, 9.0]), units[1].name: torch.tensor([0.1, 0.1, 0.1, 10.0])}
    ranking = rank(scores, units, "global", normalise=True, min_keep=1)
    keep = ranking.keep_for_ratio(3 / 8)  # remove 3 of 8 heads
    # normalised: layer0 = [1,2,4,9]/10.1 = [.099,.198,.396,.891]; layer1 = [.00999]*3 + [.9998]
    assert keep[units[1].name].tolist() == [False, False, False, True]
    assert keep[units[0].name].tolist() == [True, True, True, True]
    everything = ranking.keep_for_ratio(1.0)
    assert [int(k.sum()) for k in everything.values()] == [1, 1]


def test_swin_ranks_per_stage_and_prunes_every_stage_to_the_same_ratio():
    model = build(tiny_swin())
    pruner = AMDPruner(model, INPUT)
    assert pruner.scope == "stage"
    assert sorted({u.stage for u in pruner.units}) == [0, 1]
    pruner.set_scores({u.name: torch.rand(u.size, generator=torch.Generator().manual_seed(7)) for u in pruner.units})
    keep = pruner.ranking.keep_for_ratio(0.5)
    for stage in (0, 1):
        neurons = [keep[u.name] for u in pruner.units if u.kind == "neuron" and u.stage == stage]
        total = sum(k.numel() for k in neurons)
        assert sum(int(k.sum()) for k in neurons) == total - round(0.5 * total)


def test_greedy_l1_ignores_inputs_removed_in_the_previous_layer():
    model = build(tiny_bottleneck_resnet())
    units = find_units(model)
    first, second = units[0], units[1]  # conv1 -> conv2 -> conv3 of the first bottleneck
    assert second.producers[0][0] == first.consumer
    keep = {u.name: torch.ones(u.size, dtype=torch.bool) for u in units}
    keep[first.name][:3] = False
    greedy = l1_filter_scores(model, units, greedy_keep=keep)
    conv2 = dict(model.named_modules())[first.consumer]
    expected = conv2.weight.detach()[:, 3:].abs().sum(dim=(1, 2, 3))
    assert torch.allclose(greedy[second.name], expected)


@pytest.mark.parametrize(
    "cfg,scale",
    [(tiny_vit, 0.5), (lambda: cifar_resnet("resnet8"), 0.5), (tiny_bottleneck_resnet, 0.4)],
    ids=["vit", "cifar_resnet", "bottleneck_resnet"],
)
def test_densified_model_equals_masked_model(cfg, scale, images):
    model = build(cfg())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores({u.name: torch.rand(u.size, generator=torch.Generator().manual_seed(11)) for u in pruner.units})
    pruner.apply(scale)
    masked = model(images)
    params = sum(p.numel() for p in model.parameters())
    pruner.densify(model, scale)
    assert torch.allclose(model(images), masked, atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) < params


def test_target_below_smallest_reachable_scale_is_a_clear_error():
    model = build(cifar_resnet("resnet20"))
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores(pruner.l1_scores(model))
    with pytest.raises(ValueError, match="below the smallest reachable scale"):
        pruner.solve(0.01)


def test_unsupported_backbone_is_a_clear_error():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())

    with pytest.raises(TypeError, match="does not support backbone Sequential"):
        find_units(Plain())


def test_export_of_heads_of_an_unknown_attention_module_is_a_clear_error():
    class Attention(nn.Module):  # qkv/proj/num_heads like mmpretrain's, but no known head layout
        def __init__(self):
            super().__init__()
            self.num_heads, self.qkv, self.proj = 2, nn.Linear(8, 24), nn.Linear(8, 8)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(Attention())

    model = Model()
    units = find_units(model)
    keep = {u.name: torch.tensor([True, False]) for u in units}
    with pytest.raises(NotImplementedError, match="Attention .*backbone.0.*MultiheadAttention.*WindowMSA"):
        densify(model, units, keep)


def test_cost_model_refuses_nested_cost_modules():
    model = build(cifar_resnet("resnet8"))
    units = find_units(model)
    units[0].cost_modules.append("backbone.layer1")
    with pytest.raises(ValueError, match="nested"):
        CostModel.measure(model, units, (torch.randn(1, *INPUT),))


def test_layer_granularity_ffn_masks_are_refused():
    """'layer' never removed an FFN and its cost model disagreed with the masked model: it was removed."""
    with pytest.raises(ValueError, match="only 'neuron' is supported"):
        find_units(build(tiny_vit()), ffn_granularity='layer')
