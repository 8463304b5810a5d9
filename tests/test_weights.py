"""Strict teacher / load_from loading (mmkd_ext/weights.py): a wrong checkpoint is an error, not a random teacher."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmrazor.registry import MODELS
from test_checks import classifier, kd

from mmkd_ext.weights import CheckpointMismatchError, extract_prefix, key_mismatch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def run_ckpt(tmp_path_factory):
    """The checkpoint of a whole distillation run (keys architecture.* / teacher.*) and a plain teacher file."""
    torch.manual_seed(0)
    algo = MODELS.build(kd())
    root = tmp_path_factory.mktemp('ckpts')
    run = str(root / 'epoch_2.pth')
    torch.save(dict(state_dict=algo.state_dict(), meta={}), run)
    teacher = str(root / 'teacher.pth')
    torch.save(dict(state_dict=algo.teacher.state_dict(), meta={}), teacher)
    return run, teacher, algo


def test_key_mismatch_by_hand():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    state = {'0.weight': torch.zeros(3, 2), '0.bias': torch.zeros(4), 'extra': torch.zeros(1),
             '1.weight': torch.zeros(3), '1.bias': torch.zeros(3), '1.running_mean': torch.zeros(3)}
    missing, unexpected, shapes = key_mismatch(model, state)
    assert missing == ['1.running_var']  # num_batches_tracked is ignored, as MMEngine does
    assert unexpected == ['extra']
    assert shapes == ['0.bias: (4,) in the file, (3,) in the model']


def test_distillation_run_as_teacher_ckpt_is_an_error_naming_file_keys_and_cause(run_ckpt):
    run, _, _ = run_ckpt
    with pytest.raises(RuntimeError) as err:  # MMEngine's strict error type
        MODELS.build(dict(kd(), teacher_ckpt=run))
    assert isinstance(err.value, CheckpointMismatchError)
    msg = str(err.value)
    assert run in msg and 'missing keys (backbone.' in msg
    assert "'architecture.'" in msg and "'teacher.'" in msg and 'extract_weights.py' in msg
    assert 'teacher_ckpt_strict=False' in msg


def test_partial_teacher_load_is_allowed_explicitly(run_ckpt):
    run, _, _ = run_ckpt
    algo = MODELS.build(dict(kd(), teacher_ckpt=run, teacher_ckpt_strict=False))
    assert algo.teacher_ckpt_strict is False


def test_matching_teacher_ckpt_loads_its_weights(run_ckpt):
    _, teacher, trained = run_ckpt
    torch.manual_seed(1)
    algo = MODELS.build(dict(kd(), teacher_ckpt=teacher))
    for (name, got), want in zip(algo.teacher.state_dict().items(), trained.teacher.state_dict().values()):
        assert torch.equal(got, want), name
    assert not any(p.requires_grad for p in algo.teacher.parameters())


def test_extracted_student_loads_strictly(run_ckpt, tmp_path):
    from tools.misc.extract_weights import main
    run, _, trained = run_ckpt
    out = main([run, str(tmp_path / 'student.pth'), '--prefix', 'architecture.'])
    student = MODELS.build(classifier(4))
    from mmkd_ext.weights import load_weights
    load_weights(student, out)
    assert torch.equal(student.head.fc.weight, trained.architecture.head.fc.weight)
    with pytest.raises(KeyError, match="starts with 'student.'"):
        extract_prefix(torch.load(run), 'student')


def test_load_from_of_another_model_is_an_error(run_ckpt, tmp_path, digits_root):
    """``load_from`` (and tools/test.py) of a distillation run into the plain student config."""
    from mmengine.runner import Runner
    run, _, _ = run_ckpt
    cfg = Config.fromfile(osp.join(ROOT, 'configs/kd/resnet8x0.5_1xb32-30e_digits.py'))
    cfg.work_dir, cfg.load_from = str(tmp_path), run
    cfg.model = classifier(4)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(CheckpointMismatchError, match="load_from .*epoch_2.pth.*load_from_strict=False"):
        runner.load_or_resume()
    cfg.load_from_strict = False
    Runner.from_cfg(cfg).load_or_resume()  # explicit opt-out: loads what fits


@pytest.fixture(scope='module')
def digits_run_ckpt(tmp_path_factory):
    """A digits resnet20 saved as a distillation run would save it (every key under ``architecture.``)."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/fkd/labels_resnet20_m30-ms5_digits.py'))
    model = MODELS.build(cfg.teachers[0].model.to_dict())
    path = str(tmp_path_factory.mktemp('run') / 'epoch_1.pth')
    torch.save(dict(state_dict={f'architecture.{k}': v for k, v in model.state_dict().items()}, meta={}), path)
    return path


@pytest.mark.parametrize('config', ['amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py',
                                    'acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py'])
def test_amd_and_acmkd_teachers_load_strictly(config, digits_run_ckpt):
    model = Config.fromfile(osp.join(ROOT, 'configs', config)).model
    model.teacher_ckpt = digits_run_ckpt
    with pytest.raises(CheckpointMismatchError, match="'architecture.'.*teacher_ckpt_strict=False"):
        MODELS.build(model)


def test_fkd_label_teacher_loads_strictly(digits_run_ckpt):
    from mmkd_ext.fkd.generation import build_teachers
    cfg = Config.fromfile(osp.join(ROOT, 'configs/fkd/labels_resnet20_m30-ms5_digits.py'))
    spec = dict(model=cfg.teachers[0].model.to_dict(), checkpoint=digits_run_ckpt)
    with pytest.raises(CheckpointMismatchError, match=r"teachers\[0\].checkpoint .*strict=False in teachers\[0\]"):
        build_teachers([spec], torch.device('cpu'))
    assert len(build_teachers([dict(spec, strict=False)], torch.device('cpu'))) == 1
