"""AMD state that must follow the model: masks as buffers, the BN bank after MMEngine's SyncBN conversion."""
import pytest
import torch
from mmengine.model import revert_sync_batchnorm

from mmkd_ext.amd.algorithm import AMDDistill
from mmkd_ext.amd.pruner import AMDPruner
from mmkd_ext.amd.pruning import MASK_BUFFER, MaskSet

from .conftest import INPUT, build, cifar_resnet

PRE = dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3, std=[127.5] * 3)


def _pruned_resnet(scale=0.5):
    model = build(cifar_resnet('resnet8'))
    pruner = AMDPruner(model, INPUT, candidate_mode='masked')  # every unit through its mask
    pruner.set_scores(pruner.l1_scores(model))
    pruner.apply(scale)
    return model, pruner


def test_masks_follow_dtype_and_device_moves_of_the_model(images):
    model, pruner = _pruned_resnet()
    keep = pruner.keep(0.5)
    expected = model(images).double()
    model.to(torch.float64)
    for unit in pruner.units:
        mask = pruner.masks.masks[unit.name]
        assert mask.dtype == torch.float64
        assert torch.equal(mask, keep[unit.name].double())  # same binary values after the move
    assert torch.allclose(model(images.double()), expected, atol=1e-5)
    model.half()
    assert {m.dtype for m in pruner.masks.masks.values()} == {torch.float16}
    model.to('meta')  # a device move (as .cuda() would be): the masks go along
    assert {m.device.type for m in pruner.masks.masks.values()} == {'meta'}


def test_masks_are_not_in_the_state_dict_and_leave_with_remove():
    model, pruner = _pruned_resnet()
    assert not any(MASK_BUFFER in k for k in model.state_dict())
    pruner.masks.remove()
    assert not any(MASK_BUFFER in name for name, _ in model.named_buffers())


def test_a_second_mask_set_on_the_same_model_is_a_clear_error():
    model, pruner = _pruned_resnet()
    with pytest.raises(RuntimeError, match='already holds an AMD mask'):
        MaskSet(model, pruner.units)


def _algorithm(tmp_path):
    torch.manual_seed(0)
    cfg = dict(cifar_resnet('resnet8'), data_preprocessor=PRE)
    return AMDDistill(architecture=cfg, teacher=cfg, teacher_ckpt=None, student_ckpt=None, scales=[0.8, 0.5],
                      pruner=dict(input_shape=INPUT, candidate_mode='masked'),  # SyncBN: masked candidates
                      feature_modules=['backbone.layer3'])


def _bn(algo, name='backbone.layer1.0.bn1'):
    return dict(algo.architecture.named_modules())[name]


@pytest.mark.parametrize('convert', ['sync_then_revert', 'sync'])
def test_bn_bank_keeps_working_when_mmengine_replaces_the_bn_modules(tmp_path, convert):
    algo = _algorithm(tmp_path)
    algo.set_scale(0.8)
    _bn(algo).running_mean.fill_(8.0)  # candidate 0.8's own statistics
    algo.set_scale(0.5)
    _bn(algo).running_mean.fill_(5.0)
    algo.set_scale(None)
    old = _bn(algo)
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(algo)  # what the Runner does for sync_bn under DDP
    if convert == 'sync_then_revert':
        revert_sync_batchnorm(algo)  # ... and back on one device (the DeepLabV3 config's SyncBN)
    assert _bn(algo) is not old
    algo.set_scale(0.8)
    assert torch.all(_bn(algo).running_mean == 8.0)
    algo.set_scale(0.5)
    assert torch.all(_bn(algo).running_mean == 5.0)
    _bn(algo).running_mean.fill_(4.0)  # training of 0.5 on the new module is stored in the bank
    algo.set_scale(0.8)
    assert float(algo.bn_stats()['0.5']['backbone.layer1.0.bn1']['running_mean'][0]) == 4.0

