"""Pruning and physical export of the CIFAR WRN / VGG backbones and of Swin (METHODS.md §1.3, supp. Table 7)."""

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmkd_ext.amd.export import export_pruned, pruned_model_config
from mmkd_ext.amd.flops import candidate_scales, total_flops
from mmkd_ext.amd.pruner import AMDPruner
from mmkd_ext.amd.pruning import MaskSet, PrunedWindowMSA, densify, find_units, keep_is_nested, l1_filter_scores
from mmkd_ext.registry import MODELS

from .conftest import INPUT, build, tiny_swin

VGG_ARCH = ((8, 8), (16, ), (16, 16), (24, ), (32, ))


def _classifier(backbone, channels):
    return dict(_scope_='mmpretrain', type='ImageClassifier', backbone=backbone,
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=10, in_channels=channels))


def tiny_wrn():
    return _classifier(dict(type='CIFARWideResNet', arch=(16, 1)), 64)  # 2 pre-activation blocks per stage


def tiny_vgg(out_indices=(4, )):
    return _classifier(dict(type='CIFARVGG', arch=VGG_ARCH, out_indices=out_indices), 32)


def build_random_bn(cfg):
    """A tiny model in eval mode whose BNs have random statistics and affine terms, so a pruned channel's output
    (its BN bias) is not zero and masking/removing it changes the function."""
    model = build(cfg)
    gen = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    return model


def _random_scores(units, seed=11):
    gen = torch.Generator().manual_seed(seed)
    return {u.name: torch.rand(u.size, generator=gen) for u in units}


def test_wrn_units_are_the_inner_channels_of_every_preact_block():
    model = build(tiny_wrn())
    units = find_units(model)
    assert [u.name for u in units] == [f'backbone.layer{s}.{b}.conv1' for s in (1, 2, 3) for b in (0, 1)]
    assert [u.size for u in units] == [16, 16, 32, 32, 64, 64]
    first = units[0]
    assert first.consumer == 'backbone.layer1.0.conv2' and first.stage == 0 and units[-1].stage == 2
    assert first.producers == [('backbone.layer1.0.conv1', 'conv'), ('backbone.layer1.0.bn2', 'norm')]


def test_vgg_units_skip_the_convs_whose_output_leaves_the_backbone():
    units = find_units(build(tiny_vgg()))
    names = ['blocks.0.0', 'blocks.0.3', 'blocks.1.0', 'blocks.2.0', 'blocks.2.3', 'blocks.3.0']
    assert [u.name for u in units] == [f'backbone.{n}' for n in names]  # blocks.4.0 feeds the classifier
    assert [u.consumer for u in units] == [f'backbone.{n}' for n in names[1:] + ['blocks.4.0']]
    assert units[1].producers == [('backbone.blocks.0.3', 'conv'), ('backbone.blocks.0.4', 'norm')]
    # a block returned by the backbone (e.g. for feature distillation) keeps the width of its output
    units = find_units(build(tiny_vgg(out_indices=(2, 4))))
    assert 'backbone.blocks.2.3' not in [u.name for u in units] and len(units) == 5


@pytest.mark.parametrize('cfg', [tiny_wrn, tiny_vgg], ids=['wrn', 'vgg'])
def test_all_ones_masks_equal_unpruned_model(cfg, images):
    model = build_random_bn(cfg())
    expected = model(images)
    masks = MaskSet(model, find_units(model))
    masks.requires_grad(True)  # forces the multiplication path of every hook
    assert torch.allclose(model(images), expected, atol=1e-6)


@pytest.mark.parametrize('cfg', [tiny_wrn, tiny_vgg], ids=['wrn', 'vgg'])
def test_greedy_l1_target_scale_is_reached_and_matches_mmengine_count_of_exported_model(cfg):
    model = build_random_bn(cfg())
    pruner = AMDPruner(model, INPUT, scale_tol=0.01)
    pruner.set_scores(pruner.l1_scores(model, greedy_scale=0.4))
    target = 0.5
    solution = pruner.solve(target)
    assert abs(solution.scale - target) <= 0.03
    teacher_flops = total_flops(model, (torch.randn(1, *INPUT), ))
    pruner.densify(model, target)
    measured = total_flops(model, (torch.randn(1, *INPUT), )) / teacher_flops  # MMEngine on the smaller network
    assert measured == pytest.approx(solution.scale, rel=1e-6)


def test_vgg_greedy_l1_ignores_inputs_removed_by_the_previous_conv():
    model = build(tiny_vgg())
    units = find_units(model)
    first, second = units[0], units[1]  # blocks.0.0 -> blocks.0.3 -> blocks.1.0
    assert second.producers[0][0] == first.consumer
    keep = {u.name: torch.ones(u.size, dtype=torch.bool) for u in units}
    keep[first.name][:3] = False
    greedy = l1_filter_scores(model, units, greedy_keep=keep)
    conv = dict(model.named_modules())[first.consumer]
    assert torch.allclose(greedy[second.name], conv.weight.detach()[:, 3:].abs().sum(dim=(1, 2, 3)))


@pytest.mark.parametrize('cfg', [tiny_wrn, tiny_vgg, tiny_swin], ids=['wrn', 'vgg', 'swin'])
def test_candidate_masks_are_nested(cfg):
    model = build(cfg())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores(_random_scores(pruner.units, seed=5))
    scales = candidate_scales(0.4, 6)
    assert pruner.check_nested(scales)
    keeps = [pruner.keep(s) for s in scales]
    for small, large in zip(keeps[1:], keeps[:-1]):
        assert keep_is_nested(small, large)
    assert sum(int(k.sum()) for k in keeps[-1].values()) < sum(int(k.sum()) for k in keeps[0].values())


@pytest.mark.parametrize('cfg,scale', [(tiny_wrn, 0.45), (tiny_vgg, 0.4), (tiny_swin, 0.5)], ids=['wrn', 'vgg', 'swin'])
def test_exported_model_rebuilt_from_widths_equals_masked_model(cfg, scale, images):
    model = build_random_bn(cfg())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores(_random_scores(pruner.units))
    unpruned = model.backbone(images)[-1]
    pruner.apply(scale)
    masked_feat, masked = model.backbone(images)[-1], model(images)
    assert not torch.allclose(masked_feat, unpruned, atol=1e-3)  # the masks change the function
    params = sum(p.numel() for p in model.parameters())
    widths = pruner.densify(model, scale)
    assert torch.allclose(model.backbone(images)[-1], masked_feat, atol=1e-5)
    # AMDPrunedBackbone builds the standard backbone and slices it to the widths: the weights load strictly
    rebuilt = MODELS.build(pruned_model_config(cfg(), widths)).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert sum(p.numel() for p in rebuilt.parameters()) < params
    assert torch.allclose(rebuilt.backbone(images)[-1], masked_feat, atol=1e-5)
    assert torch.allclose(rebuilt(images), masked, atol=1e-6)


def test_swin_export_removes_heads_and_keeps_the_original_head_scale():
    model = build(tiny_swin())
    units = [u for u in find_units(model) if u.kind == 'head']
    attn = dict(model.named_modules())[units[-1].name]  # stage 1: 4 heads of width 8 (embed 32)
    scale, table = attn.scale, attn.relative_position_bias_table.detach().clone()
    keep = {u.name: torch.ones(u.size, dtype=torch.bool) for u in find_units(model)}
    keep[units[-1].name] = torch.tensor([False, True, False, True])
    densify(model, find_units(model), keep)
    assert isinstance(attn, PrunedWindowMSA) and attn.num_heads == 2 and attn.head_dims == 8
    assert attn.scale == scale == 8 ** -0.5 and attn.embed_dims == 32  # input/output width unchanged
    assert attn.qkv.weight.shape == (3 * 2 * 8, 32) and attn.proj.weight.shape == (32, 2 * 8)
    assert torch.equal(attn.relative_position_bias_table, table[:, [1, 3]])
    # the exported Swin can be pruned again: units see the kept heads
    again = [u for u in find_units(model) if u.name == units[-1].name][0]
    assert (again.size, again.width) == (2, 8)


def test_swin_export_files_load_as_a_standard_config(tmp_path, images):
    cfg = tiny_swin()
    model = build(cfg)
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores(_random_scores(pruner.units, seed=3))
    pruner.apply(0.5)
    masked = model(images)
    widths = pruner.densify(model, 0.5)
    files = export_pruned(model, cfg, widths, str(tmp_path), 'ta')
    exported = Config.fromfile(files['config'])
    rebuilt = MODELS.build(exported.model).eval()
    state = torch.load(files['checkpoint'], map_location='cpu', weights_only=True)['state_dict']
    rebuilt.load_state_dict(state, strict=True)
    assert torch.allclose(rebuilt(images), masked, atol=1e-6)


@pytest.mark.parametrize('cfg', [tiny_wrn, tiny_vgg], ids=['wrn', 'vgg'])
def test_target_below_smallest_reachable_scale_is_a_clear_error(cfg):
    model = build(cfg())
    pruner = AMDPruner(model, INPUT)
    pruner.set_scores(pruner.l1_scores(model))
    with pytest.raises(ValueError, match='below the smallest reachable scale'):
        pruner.solve(0.005)
