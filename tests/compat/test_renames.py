"""Old mmcls / mmdet 2.x names in MMRazor's configs resolve to their successors; upstream names resolve as before."""
import os.path as osp

import mmengine.hub
import mmengine.registry
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope, Registry
from mmpretrain.datasets.transforms.formatting import PackInputs
from mmpretrain.models import ClsDataPreprocessor, ImageClassifier, ResNet_CIFAR
from mmpretrain.models.heads import DeiTClsHead as PretrainDeiTClsHead
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmpretrain.registry import VISUALIZERS as PRETRAIN_VISUALIZERS
from mmpretrain.visualization import UniversalVisualizer
from mmrazor.registry import MODELS

from mmkd_ext.compat import renames

PACKAGES = {'mmpretrain': 'mmpretrain', 'mmdet': 'mmdet'}


def installed_config(scoped_path):
    """The file an upstream ``package::rel`` path names, computed from the package location."""
    package, rel = scoped_path.split('::')
    module = __import__(PACKAGES[package])
    return osp.realpath(osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel))


def write_config(tmp_path, base):
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = [{base!r}]\n')
    return str(path)


def test_every_entry_names_a_missing_old_and_an_existing_new_upstream_name():
    for entry in renames.RENAMES:
        if entry.kind == 'config':
            assert osp.isfile(installed_config(entry.new)), entry
            old = entry.old.replace('mmcls::', 'mmpretrain::')
            assert not osp.exists(installed_config(old)), f'{entry.old} exists upstream: the table would shadow it'
        elif entry.kind == 'class':
            found = [r for r in (PRETRAIN_TRANSFORMS, PRETRAIN_VISUALIZERS) if entry.new in r.module_dict]
            assert found, entry
            assert all(entry.old not in r.module_dict for r in found), entry
    assert {r.kind for r in renames.RENAMES} == {'scope', 'class', 'config', 'base', 'global'}
    assert all(r.reason for r in renames.RENAMES)


def test_mmcls_base_loads_the_same_config_as_its_mmpretrain_path(tmp_path):
    old = Config.fromfile(write_config(tmp_path, 'mmcls::resnet/resnet18_8xb32_in1k.py'))
    new = Config.fromfile(write_config(tmp_path, 'mmpretrain::resnet/resnet18_8xb32_in1k.py'))
    assert old.to_dict() == new.to_dict()
    assert old.model._scope_ == 'mmpretrain' and old.model.backbone.depth == 18


def test_renamed_mmdet_and_mmcls_files_load_their_successors():
    for entry in renames.RENAMES:
        if entry.kind == 'config':
            path, scope = Config._get_cfg_path(entry.old, '')
            assert osp.realpath(path) == installed_config(entry.new)
            assert scope == entry.new.split('::')[0]


def test_upstream_config_paths_are_unchanged():
    path = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
    resolved, scope = Config._get_cfg_path(path, '')
    assert (osp.realpath(resolved), scope) == (installed_config(path), 'mmpretrain')
    assert renames.successor_cfg_path('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py') == \
        'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
    assert renames.successor_cfg_path('../_base_/default_runtime.py') == '../_base_/default_runtime.py'
    from_hub = mmengine.hub.get_config(path).to_dict()
    assert from_hub == Config.fromfile(installed_config(path)).to_dict()


def test_mmcls_cfg_path_builds_the_mmpretrain_model():
    model = MODELS.build(dict(cfg_path='mmcls::resnet/resnet18_8xb16_cifar10.py', pretrained=False))
    assert type(model) is ImageClassifier
    assert type(model.backbone) is ResNet_CIFAR and model.backbone.depth == 18
    assert model.head.fc.out_features == 10


def test_mmcls_scope_is_the_mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmcls'):
        assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'
    backbone = MODELS.build(dict(_scope_='mmcls', type='ResNet_CIFAR', depth=18))
    assert type(backbone) is ResNet_CIFAR
    assert MODELS.get('mmcls.ResNet_CIFAR') is ResNet_CIFAR


def test_old_class_names_resolve_to_their_successors_without_a_second_registration():
    assert PRETRAIN_TRANSFORMS.get('PackClsInputs') is PackInputs
    assert PRETRAIN_TRANSFORMS.get('mmcls.PackClsInputs') is PackInputs
    assert PRETRAIN_VISUALIZERS.get('ClsVisualizer') is UniversalVisualizer
    assert PRETRAIN_TRANSFORMS.get('PackInputs') is PackInputs
    registries = registry_tree(mmengine.registry.TRANSFORMS) + registry_tree(mmengine.registry.VISUALIZERS)
    assert PRETRAIN_TRANSFORMS in registries and PRETRAIN_VISUALIZERS in registries
    for registry in registries:
        assert not set(renames.CLASSES) & set(registry.module_dict), registry
    assert list(PRETRAIN_TRANSFORMS.module_dict.values()).count(PackInputs) == 1


def registry_tree(root):
    """``root`` and every registry below it."""
    return [root] + [r for child in root.children.values() for r in registry_tree(child)]


def test_a_registry_that_knows_an_old_name_keeps_its_own_class():
    registry = Registry('h17_standalone')

    @registry.register_module(name='PackClsInputs')
    class OwnPack:
        pass

    assert registry.get('PackClsInputs') is OwnPack
    assert registry.get('Missing') is None


def test_mmcls_prefixed_type_builds_in_the_mmpretrain_scope():
    """mmcls 1.0.0rc's ImageClassifier defaulted to 'mmcls.ClsDataPreprocessor'; mmpretrain's names it unscoped."""
    classifier = dict(type='mmcls.ImageClassifier', backbone=dict(type='mmcls.ResNet_CIFAR', depth=18),
                      neck=dict(type='mmcls.GlobalAveragePooling'),
                      head=dict(type='mmcls.LinearClsHead', num_classes=10, in_channels=512))
    with DefaultScope.overwrite_default_scope('mmrazor'):
        model = MODELS.build(classifier)
    assert type(model.data_preprocessor) is ClsDataPreprocessor
    assert renames.scoped_by_type_prefix(dict(_scope_='mmrazor', type='mmcls.X')) == dict(_scope_='mmrazor',
                                                                                          type='mmcls.X')
    assert renames.scoped_by_type_prefix(dict(type='mmdet.X')) == dict(type='mmdet.X')


def test_mmrazor_deit_head_on_mmpretrain_returns_the_cls_token_logits_and_runs_head_dist():
    torch.manual_seed(0)
    head = MODELS.build(dict(type='mmrazor.DeiTClsHead', num_classes=3, in_channels=4))
    assert isinstance(head, PretrainDeiTClsHead)
    seen = []
    head.layers.head_dist.register_forward_hook(lambda module, inputs, output: seen.append(output))
    cls_token, dist_token = torch.randn(2, 4), torch.randn(2, 4)
    logits = head(((cls_token, dist_token), ))
    w, b = head.layers.head.weight, head.layers.head.bias
    assert torch.allclose(logits, cls_token @ w.T + b)
    wd, bd = head.layers.head_dist.weight, head.layers.head_dist.bias
    assert len(seen) == 1 and torch.allclose(seen[0], dist_token @ wd.T + bd)
    assert list(MODELS.module_dict.values()).count(type(head)) == 1


@pytest.mark.parametrize('key,expected', [('mmcls.ResNet', 'mmpretrain.ResNet'), ('mmdet.ResNet', 'mmdet.ResNet'),
                                          ('ResNet', 'ResNet')])
def test_successor_key(key, expected):
    assert renames.successor_key(key) == expected


def test_crd_transform_packs_mmpretrain_samples_with_its_contrast_indices():
    """MMRazor's CRD config packs with ``PackCRDClsInputs``, an mmcls ``PackClsInputs`` subclass whose transform
    builds ``ClsDataSample`` with mmcls's ``to_tensor``: placeholders without mmcls (ImportError at the first batch)."""
    import numpy as np
    from mmpretrain.datasets.transforms import PackInputs
    from mmpretrain.structures import DataSample
    from mmrazor.datasets.transforms import formatting
    from mmrazor.registry import TRANSFORMS
    for entry in renames.RENAMES:
        if entry.kind == 'global':
            module, _, name = entry.old.rpartition('.')
            assert module == formatting.__name__ and not renames._is_placeholder(getattr(formatting, name)), entry
    pack = TRANSFORMS.build(dict(type='mmrazor.PackCRDClsInputs'))  # whatever default scope earlier tests left
    assert isinstance(pack, PackInputs)
    img = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    out = pack(dict(img=img, gt_label=3, sample_idx=7, contrast_sample_idxs=np.array([7, 1, 2]), ori_shape=(4, 4)))
    sample = out['data_samples']
    assert isinstance(sample, DataSample) and sample.gt_label.tolist() == [3]
    assert sample.sample_idx.item() == 7 and sample.contrast_sample_idxs.tolist() == [7, 1, 2]
    assert out['inputs'].shape == (3, 4, 4) and out['inputs'][0, 0, 1].item() == img[0, 1, 0]
