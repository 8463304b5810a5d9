"""tools/model_converters/torchvision_to_mmpretrain.py: torchvision ImageNet ResNets -> the ImageNet configs' teachers.

torchvision's own ResNet (random weights, saved the way torchvision releases them: a plain state dict) is the
independent reference: converted and loaded into the ImageClassifier the configs build, it must give the same logits.
"""
import os.path as osp

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from tools.model_converters.torchvision_to_mmpretrain import RELEASED, build_mmpretrain_model, convert, convert_key

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _released_file(tmp_path, arch, seed=0):
    torch.manual_seed(seed)
    model = torchvision.models.__dict__[arch](weights=None)
    for module in model.modules():  # non-trivial BN statistics, so that eval-mode BN is checked too
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / RELEASED[arch][1]
    torch.save(model.state_dict(), path)
    return model.eval(), str(path)


def test_keys_of_stem_blocks_downsample_and_classifier():
    assert convert_key('conv1.weight') == 'backbone.conv1.weight'
    assert convert_key('bn1.running_var') == 'backbone.bn1.running_var'
    assert convert_key('layer3.0.downsample.1.num_batches_tracked') == \
        'backbone.layer3.0.downsample.1.num_batches_tracked'
    assert convert_key('layer4.2.conv3.weight') == 'backbone.layer4.2.conv3.weight'
    assert convert_key('fc.weight') == 'head.fc.weight'
    with pytest.raises(KeyError, match="'classifier.1.weight'"):
        convert_key('classifier.1.weight')  # a torchvision MobileNetV2 / VGG file given as a ResNet


@pytest.mark.parametrize('arch', ['resnet18', 'resnet50'])  # BasicBlock and Bottleneck
def test_converted_weights_give_torchvisions_logits_in_the_configs_teacher(tmp_path, arch):
    reference, src = _released_file(tmp_path, arch)
    dst = str(tmp_path / 'converted.pth')
    out = convert(src, dst, arch, verify=True)
    assert out['meta']['max_logit_difference'] < 1e-4 and out['meta']['released_top1'] == RELEASED[arch][2]
    model = build_mmpretrain_model(arch).eval()
    load_checkpoint(model, dst, strict=True)  # every key matched, none left over (the teacher loader is strict too)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        assert torch.allclose(model(x, mode='tensor'), expected, atol=1e-5)
    assert expected.shape == (2, 1000)


def test_imagenet_configs_name_the_converted_torchvision_teacher_of_the_papers():
    """VRM Table 2 and KD-Zero Table 4 distil from torchvision's ResNet-34 (73.31) and ResNet-50 (76.16)."""
    expected = {
        'vrm/vrm_resnet34_resnet18_8xb32-100e_in1k.py': 'resnet34',
        'vrm/vrm_resnet50_mobilenetv2_8xb32-100e_in1k.py': 'resnet50',
        'kd_zero/kd_zero_resnet34_resnet18_8xb32-100e_in1k.py': 'resnet34',
        'kd/kd_logits_resnet34_resnet18_8xb32-100e_in1k.py': 'resnet34',
    }
    for rel, arch in expected.items():
        model = Config.fromfile(osp.join(ROOT, 'configs', rel)).model
        assert model.teacher_ckpt == f'checkpoints/torchvision/{arch}_in1k_converted.pth', rel
        assert model.teacher.cfg_path == RELEASED[arch][0], rel  # the model the converter writes weights for


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / 'bad.pth'
    torch.save({'epoch': 3}, path)
    with pytest.raises(KeyError, match='not a torchvision state dict'):
        convert(str(path), str(tmp_path / 'out.pth'), 'resnet18')


def test_weights_of_another_arch_are_refused_naming_the_arch_they_are(tmp_path):
    """resnet18 weights given as --arch resnet34 (issue 24, item 6): refused before anything is written."""
    _, src = _released_file(tmp_path, 'resnet18')
    dst = tmp_path / 'out.pth'
    with pytest.raises(RuntimeError, match=r'does not hold torchvision resnet34 weights \(80 missing keys '
                                           r'\(layer1\.2\.bn1\.bias.*\); they are torchvision resnet18 weights: '
                                           r'use --arch resnet18') as err:
        convert(src, str(dst), 'resnet34')
    assert type(err.value).__name__ == 'CheckpointMismatchError'
    assert not dst.exists()


def test_an_unknown_arch_is_refused_listing_the_choices(tmp_path, capsys):
    from tools.model_converters.torchvision_to_mmpretrain import main
    with pytest.raises(SystemExit) as exit_:
        main(['src.pth', str(tmp_path / 'out.pth'), '--arch', 'resnet999'])
    assert exit_.value.code == 2
    assert "invalid choice: 'resnet999'" in capsys.readouterr().err
