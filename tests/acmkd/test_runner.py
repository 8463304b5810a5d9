"""The digits demo config through MMEngine's Runner: training, ranking, evaluation, export, 2 processes."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from gloo_ranks import free_port
from mmengine.config import Config
from mmengine.runner import Runner, load_checkpoint

from mmkd_ext.acmkd import export_students
from mmkd_ext.registry import MODELS

from .helpers import ROOT

CONFIG = osp.join(ROOT, 'configs', 'acmkd', 'acmkd_resnet20_3students_1xb32-30e_digits.py')
STUDENTS = ['resnet8', 'rednet', 'vit']


def small_cfg(work_dir, epochs=2):
    """The demo config with a random teacher, 2 iterations per epoch and a 100-image validation set."""
    cfg = Config.fromfile(CONFIG)
    cfg.model.teacher_ckpt = None
    cfg.work_dir = str(work_dir)
    cfg.log_level = 'WARNING'
    cfg.train_dataloader.dataset.dataset.indices = 64  # inside the HeldOutSubset: 58 train, 6 held out
    cfg.val_dataloader.dataset.indices = 100
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler[0].T_max = epochs
    cfg.model.ssd_start_epoch = 1
    return cfg


@pytest.fixture(scope='module')
def trained(digits_root, tmp_path_factory):
    torch.manual_seed(0)
    runner = Runner.from_cfg(small_cfg(tmp_path_factory.mktemp('acmkd_run')))
    runner.train()
    return runner


def test_runner_trains_ranks_students_and_runs_second_stage(trained):
    model = trained.model
    assert model.weakest in STUDENTS
    # epoch 2 (index 1) had the weakest student known and SSD on
    assert trained.message_hub.get_scalar('train/ssd.loss_ce') is not None
    assert trained.message_hub.get_scalar('train/loss_att') is not None


def test_validation_reports_teacher_students_ensemble_and_gaps(trained):
    metrics = trained.val_loop.run()
    for net in ['teacher', *STUDENTS, 'ensemble', 'mean']:
        assert f'{net}.accuracy/top1' in metrics
    for net in [*STUDENTS, 'ensemble', 'mean']:
        gap = metrics[f'{net}.accuracy/top1'] - metrics['teacher.accuracy/top1']
        assert metrics[f'{net}.gap/accuracy/top1'] == pytest.approx(gap)
    mean = sum(metrics[f'{s}.accuracy/top1'] for s in STUDENTS) / 3
    assert metrics['mean.accuracy/top1'] == pytest.approx(mean)


def test_best_student_checkpoints_are_standalone_mmpretrain_models(trained):
    for name in STUDENTS:
        path = osp.join(trained.work_dir, f'best_{name}.pth')
        assert osp.isfile(path)
        classifier = MODELS.build(trained.model.student_cfgs[name])
        load_checkpoint(classifier, path, map_location='cpu', strict=True)


def test_exported_student_reproduces_the_trained_student(trained, tmp_path):
    ckpt = osp.join(trained.work_dir, 'epoch_2.pth')
    written = export_students(ckpt, str(tmp_path))
    assert sorted(written) == sorted(STUDENTS)
    x = torch.randn(4, 3, 32, 32)
    for name in STUDENTS:
        classifier = MODELS.build(trained.model.student_cfgs[name])
        load_checkpoint(classifier, written[name], map_location='cpu', strict=True)
        student = trained.model.student(name)
        for key, value in student.state_dict().items():
            assert torch.equal(classifier.state_dict()[key], value), key
        # batch statistics (train mode): a 4-iteration RedNet's running statistics are not settled yet
        classifier.train(), student.train()
        with torch.no_grad():
            assert torch.allclose(classifier(x, mode='tensor'), student(x, mode='tensor'), atol=1e-5)


def test_two_process_run_trains(digits_root, tmp_path):
    """tools/dist_train.sh CONFIG 2 on CPU (gloo, MMSeparateDistributedDataParallel), 2 iterations."""
    work = tmp_path / 'dist'
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    cmd = ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(work), '--cfg-options',
           'model.teacher_ckpt=None', 'train_dataloader.dataset.dataset.indices=64',
           'val_dataloader.dataset.indices=20',
           'train_cfg.max_epochs=1', 'log_level=WARNING']
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert osp.isfile(work / 'epoch_1.pth')
    assert all(osp.isfile(work / f'best_{n}.pth') for n in STUDENTS)
