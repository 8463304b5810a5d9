"""Weights a config would download or cannot find are named before anything is built (offline clusters)."""
import os.path as osp

import pytest
import torch
from conftest import config_path
from mmengine.config import Config

from mmkd_ext.weight_sources import (
    WeightsUnavailable,
    check_weights_available,
    find_weight_refs,
    hub_cache_path,
    replace_unavailable_weights,
)

COCO = config_path('kd', 'cwd_fpn_retinanet_r101_retinanet_r50_1x_coco.py')


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    monkeypatch.delenv('MMKD_ALLOW_DOWNLOADS', raising=False)
    yield tmp_path / 'hub'
    torch.hub.set_dir(old)


def test_finds_the_teacher_and_the_backbone_inits_inside_cfg_path_models():
    refs = {ref.where: ref.source for ref in find_weight_refs(Config.fromfile(COCO))}
    assert refs['model.teacher_ckpt'] == 'checkpoints/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth'
    inits = {src for where, src in refs.items() if where.endswith('backbone.init_cfg.checkpoint')}
    assert inits == {'torchvision://resnet50', 'torchvision://resnet101'}  # mmdet's retinanet r50 / r101 configs


def test_a_url_is_read_from_the_torch_hub_cache(empty_hub):
    path = hub_cache_path('torchvision://resnet50')
    assert path == osp.join(str(empty_hub), 'checkpoints', 'resnet50-0676ba61.pth')  # torchvision's file name


def test_missing_and_remote_weights_are_one_error_before_building(empty_hub):
    with pytest.raises(WeightsUnavailable) as err:
        check_weights_available(Config.fromfile(COCO))
    text = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert '3 weight file(s)' in text and 'model.teacher_ckpt' in text and 'file not found' in text
    assert 'would be downloaded' in text and 'resnet50-0676ba61.pth' in text and 'MMKD_ALLOW_DOWNLOADS=1' in text
    assert 'init_cfg to None' in text  # how to switch a backbone init off


def test_cached_or_allowed_downloads_pass_and_local_files_are_still_required(empty_hub, monkeypatch, tmp_path):
    cfg = Config.fromfile(COCO)
    for name in ('resnet50-0676ba61.pth', 'resnet101-63fe2227.pth'):
        osp.isdir(empty_hub / 'checkpoints') or (empty_hub / 'checkpoints').mkdir(parents=True)
        (empty_hub / 'checkpoints' / name).write_bytes(b'0')
    with pytest.raises(WeightsUnavailable, match='1 weight file'):
        check_weights_available(cfg)
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'0')
    cfg.model.teacher_ckpt = str(teacher)
    check_weights_available(cfg)
    (empty_hub / 'checkpoints' / 'resnet50-0676ba61.pth').unlink()
    monkeypatch.setenv('MMKD_ALLOW_DOWNLOADS', '1')
    check_weights_available(cfg)


def test_train_tool_stops_before_building(empty_hub, tmp_path, shapes_root):
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_tool', config_path('..', 'tools', 'train.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = config_path('kd', 'cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py')
    with pytest.raises(WeightsUnavailable, match='model.teacher_ckpt'):
        tool.main([config, '--work-dir', str(tmp_path), '--cfg-options', 'model.teacher_ckpt=missing/teacher.pth'])


def test_replacement_for_the_config_check_leaves_nothing_unavailable(empty_hub):
    cfg = Config.fromfile(COCO)
    lines = replace_unavailable_weights(cfg)
    assert len(lines) == 3 and all(line.startswith('random init instead of ') for line in lines)
    assert cfg.model.teacher_ckpt is None
    assert cfg.model.architecture.type == 'RetinaNet' and cfg.model.architecture.backbone.init_cfg is None
    assert find_weight_refs(cfg) == []


def test_a_cfg_path_model_with_pretrained_true_names_the_zoo_checkpoint_mmengine_would_download(empty_hub):
    """MMRazor's CRD config builds its teacher with ``get_model('mmcls::resnet/resnet50_8xb16_cifar10.py',
    pretrained=True)``, which downloads the checkpoint of the package's metafile: named before building, and the
    config check replaces it (then the expanded model's own weights, if any)."""
    cfg = Config(dict(model=dict(type='SingleTeacherDistill', teacher=dict(
        cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar10.py', pretrained=True))))
    with pytest.raises(WeightsUnavailable) as err:
        check_weights_available(cfg)
    text = str(err.value)
    assert 'model.teacher.pretrained' in text and 'resnet50_b16x8_cifar10_20210528-f54bfad9.pth' in text
    assert 'set model.teacher.pretrained to False' in text
    lines = replace_unavailable_weights(cfg)
    assert len(lines) == 1 and 'resnet50_b16x8_cifar10_20210528-f54bfad9.pth' in lines[0]
    assert cfg.model.teacher.type == 'ImageClassifier' and cfg.model.teacher.backbone.depth == 50
    assert find_weight_refs(cfg) == []


def test_datafree_teachers_ckpt_path_is_named_and_removed_not_set_to_none(empty_hub):
    """MMRazor's DAFL / DFAD / ZSKT configs name each teacher's file as ``ckpt_path``; DataFreeDistillation loads
    every teacher whose dict has that key, so the config check removes it (None would be loaded)."""
    url = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet34_b16x8_cifar10_20210528-a8aa36a6.pth'
    cfg = Config(dict(model=dict(type='DataFreeDistillation', teachers=dict(res34=dict(
        build_cfg=dict(cfg_path='mmpretrain::resnet/resnet34_8xb16_cifar10.py', pretrained=False), ckpt_path=url)))))
    with pytest.raises(WeightsUnavailable, match=r'model\.teachers\.res34\.ckpt_path.*would be downloaded'):
        check_weights_available(cfg)
    lines = replace_unavailable_weights(cfg)
    assert len(lines) == 1 and url in lines[0]
    assert 'ckpt_path' not in cfg.model.teachers.res34 and find_weight_refs(cfg) == []


def test_a_timm_backbone_with_pretrained_true_is_a_hugging_face_download_named_before_building(empty_hub):
    """MMRazor's DeiT config has a ``TIMMBackbone(model_name='regnety_160', pretrained=True)`` teacher: timm fetches
    the weights from the Hugging Face Hub at build (offline: LocalEntryNotFoundError inside the Runner)."""
    cfg = Config(dict(model=dict(type='SingleTeacherDistill', teacher=dict(
        type='mmpretrain.ImageClassifier', backbone=dict(type='TIMMBackbone', model_name='regnety_160',
                                                         pretrained=True)))))
    with pytest.raises(WeightsUnavailable) as err:
        check_weights_available(cfg)
    text = str(err.value)
    assert 'model.teacher.backbone.pretrained' in text and 'timm://regnety_160' in text
    assert 'timm/regnety_160' in text and 'set model.teacher.backbone.pretrained to False' in text
    lines = replace_unavailable_weights(cfg)
    assert len(lines) == 1 and cfg.model.teacher.backbone.pretrained is False and find_weight_refs(cfg) == []
