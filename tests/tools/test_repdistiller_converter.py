"""tools/model_converters/repdistiller_to_mmkd.py: released CRD/RepDistiller teachers -> our configs' models.

The reference networks below re-implement RepDistiller's models/{resnet,wrn,vgg,resnetv2}.py module layout (names,
order, forward) so that their state dicts have the released checkpoints' keys; converting such a checkpoint and
loading it into our model must give the same logits.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from mmkd_ext.registry import MODELS
from tools.model_converters.repdistiller_to_mmkd import convert, convert_key

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODELS_CFG = osp.join(ROOT, 'configs/_base_/models/cifar100_classifiers.py')


# ---- RepDistiller models/resnet.py layout -------------------------------------------------------
class RDBasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class RDResNet(nn.Module):
    def __init__(self, depth, filters, num_classes=100):
        super().__init__()
        n, self.inplanes = (depth - 2) // 6, filters[0]
        self.conv1 = nn.Conv2d(3, filters[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.layer1 = self._make_layer(filters[1], n, 1)
        self.layer2 = self._make_layer(filters[2], n, 2)
        self.layer3 = self._make_layer(filters[3], n, 2)
        self.fc = nn.Linear(filters[3], num_classes)

    def _make_layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [RDBasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        return nn.Sequential(*layers, *[RDBasicBlock(planes, planes) for _ in range(blocks - 1)])

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x))))))
        return self.fc(F.avg_pool2d(x, 8).flatten(1))


# ---- RepDistiller models/wrn.py layout ----------------------------------------------------------
class RDWRNBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.equal else self.convShortcut(pre))


class RDNetworkBlock(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[RDWRNBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class RDWideResNet(nn.Module):
    def __init__(self, depth, k, num_classes=100):
        super().__init__()
        ch, n = [16, 16 * k, 32 * k, 64 * k], (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = RDNetworkBlock(n, ch[0], ch[1], 1)
        self.block2 = RDNetworkBlock(n, ch[1], ch[2], 2)
        self.block3 = RDNetworkBlock(n, ch[2], ch[3], 2)
        self.bn1, self.fc = nn.BatchNorm2d(ch[3]), nn.Linear(ch[3], num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.block3(self.block2(self.block1(self.conv1(x))))))
        return self.fc(F.avg_pool2d(x, 8).flatten(1))


# ---- RepDistiller models/vgg.py layout (batch_norm=True) ----------------------------------------
class RDVGG(nn.Module):
    def __init__(self, cfg, num_classes=100):
        super().__init__()
        cin = 3
        for i, block in enumerate(cfg):
            layers = []
            for v in block:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                cin = v
            setattr(self, f'block{i}', nn.Sequential(*layers[:-1]))  # the last ReLU is applied in forward
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        for i in range(5):
            x = F.relu(getattr(self, f'block{i}')(x if i == 0 else (F.max_pool2d(x, 2) if i < 4 else x)))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---- RepDistiller models/resnetv2.py layout (ResNet50) ------------------------------------------
class RDBottleneck(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, 4 * planes, 1, bias=False), nn.BatchNorm2d(4 * planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != 4 * planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, 4 * planes, 1, stride, bias=False), nn.BatchNorm2d(4 * planes))

    def forward(self, x):
        out = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class RDResNet50(nn.Module):
    def __init__(self, num_classes=100):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        cin = 64
        for i, (planes, n, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))):
            blocks = []
            for j in range(n):
                blocks.append(RDBottleneck(cin, planes, stride if j == 0 else 1))
                cin = 4 * planes
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.linear = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def randomise(model):
    """Random weights and BN statistics, so that eval-mode logits depend on every tensor."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


CASES = [  # (RepDistiller arch name, reference, our model in configs/_base_/models/cifar100_classifiers.py)
    ('resnet20', lambda: RDResNet(20, [16, 16, 32, 64]), 'resnet20'),
    ('resnet8x4', lambda: RDResNet(8, [32, 64, 128, 256]), 'resnet8x4'),
    ('wrn_16_2', lambda: RDWideResNet(16, 2), 'wrn_16_2'),
    ('vgg8', lambda: RDVGG([[64], [128], [256], [512], [512]]), 'vgg8'),
    ('ResNet50', RDResNet50, 'resnet50'),
]


@pytest.mark.parametrize('arch, reference, ours', CASES, ids=[c[0] for c in CASES])
def test_converted_released_checkpoint_gives_the_reference_logits(tmp_path, arch, reference, ours):
    ref = randomise(reference())
    src, dst = tmp_path / 'ckpt_epoch_240.pth', tmp_path / 'converted.pth'
    torch.save({'epoch': 240, 'model': ref.state_dict(), 'accuracy': 70.0}, src)  # the released layout
    convert(str(src), str(dst), arch)
    model = MODELS.build(Config.fromfile(MODELS_CFG)[ours]).eval()
    load_checkpoint(model, str(dst), map_location='cpu', strict=True)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model(x, mode='tensor'), ref(x), rtol=1e-4, atol=1e-5)


def test_unknown_key_says_the_arch_may_be_wrong():
    assert convert_key('block1.layer.0.convShortcut.weight', 'wrn') == 'backbone.layer1.0.shortcut.weight'
    with pytest.raises(KeyError, match='is --arch right'):
        convert_key('block1.layer.0.bn1.weight', 'resnet')


# our teacher backbone -> the RepDistiller arch whose released checkpoint it loads
CRD_TEACHERS = {('CIFARResNet', 'resnet56'): 'resnet56', ('CIFARResNet', 'resnet110'): 'resnet110',
                ('CIFARResNet', 'resnet32x4'): 'resnet32x4', ('CIFARWideResNet', 'wrn_40_2'): 'wrn_40_2',
                ('CIFARVGG', 'vgg13'): 'vgg13', ('ResNet_CIFAR', 50): 'ResNet50'}


def teacher_and_ckpt(cfg):
    if 'teachers' in cfg:  # FKD label generation
        return cfg.teachers[0].model, cfg.teachers[0].checkpoint
    model = cfg.get('model') or {}  # search configs have none
    return model.get('teacher'), model.get('teacher_ckpt')


def test_every_cifar100_config_with_a_crd_teacher_loads_its_converted_checkpoint():
    import glob
    seen = 0
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*cifar100*.py'))):
        teacher, ckpt = teacher_and_ckpt(Config.fromfile(path))
        if not isinstance(teacher, dict) or 'backbone' not in teacher:
            continue
        backbone = teacher['backbone']
        arch = CRD_TEACHERS.get((backbone['type'], backbone.get('arch', backbone.get('depth'))))
        if arch is None or '224px' in str(ckpt):  # KD-Zero's 224 px ResNet56 is not a CRD teacher
            continue
        assert ckpt == f'checkpoints/crd/{arch}_cifar100_converted.pth', path
        seen += 1
    assert seen >= 18


def _released(tmp_path, model):
    src = tmp_path / 'ckpt_epoch_240.pth'
    torch.save({'epoch': 240, 'model': model.state_dict(), 'accuracy': 70.0}, src)
    return str(src)


def test_an_unknown_arch_is_refused_listing_the_choices(tmp_path):
    """``--arch resnet999`` passed as a 'resnet' family arch (issue 24, item 6)."""
    src = _released(tmp_path, RDResNet(20, [16, 16, 32, 64]))
    with pytest.raises(KeyError, match=r"unknown RepDistiller arch 'resnet999': --arch is one of \[.*'resnet110', "
                                       r".*'resnet32x4'.*'wrn_40_2'"):
        convert(src, str(tmp_path / 'out.pth'), 'resnet999')


def test_weights_of_another_arch_of_the_family_are_refused_naming_theirs(tmp_path):
    """resnet8x4 weights (same key names as resnet32x4 up to depth) given as --arch resnet32x4."""
    src = _released(tmp_path, RDResNet(8, [32, 64, 128, 256]))
    with pytest.raises(RuntimeError, match=r'does not hold RepDistiller resnet32x4 weights .*missing keys.*'
                                           r'they are resnet8x4 weights: use --arch resnet8x4'):
        convert(src, str(tmp_path / 'out.pth'), 'resnet32x4')
    src = _released(tmp_path, RDResNet(8, [16, 16, 32, 64]))  # same depth, other widths: only shapes differ
    with pytest.raises(RuntimeError, match=r'resnet8x4 weights \(.*\d+ shape mismatches.*use --arch resnet8$'):
        convert(src, str(tmp_path / 'out.pth'), 'resnet8x4')


def test_a_torchvision_file_is_recognised_and_sent_to_the_right_converter(tmp_path):
    import torchvision
    src = tmp_path / 'resnet18-f37072fd.pth'
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), src)
    with pytest.raises(RuntimeError, match=r'holds torchvision ImageNet ResNet weights.*'
                                           r'tools/model_converters/torchvision_to_mmpretrain\.py'):
        convert(str(src), str(tmp_path / 'out.pth'), 'resnet32x4')
    assert not (tmp_path / 'out.pth').exists()
