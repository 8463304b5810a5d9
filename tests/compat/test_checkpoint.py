"""Checkpoints saved by tools/train.py resume and load as a teacher with weights_only kept on."""
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from conftest import ROOT, config_path
from mmengine.logging import HistoryBuffer

from mmkd_ext.compat.checkpoint import TRUSTED_ENV, load_checkpoint_file, restricted_getattr

STUDENT = config_path('kd', 'resnet8x0.5_1xb32-30e_digits.py')
KD = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')


def run_tool(*args, env=None):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


class Evil:
    """A global no allow-list names."""


class GetattrOnAllowedClass:
    """Pickles as builtins.getattr(OrderedDict, 'fromkeys'): OrderedDict is allowed, so only getattr stands guard."""

    def __reduce__(self):
        return getattr, (OrderedDict, 'fromkeys')


class GetattrOnHistoryBuffer:

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, digits_root):
    """2 iterations (1 epoch of 2 x 150 images), then --resume for a second epoch."""
    work = str(tmp_path_factory.mktemp('ckpt'))
    opts = ['train_dataloader.batch_size=150', 'train_cfg.val_interval=1']
    run_tool('tools/train.py', STUDENT, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1', *opts)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    log = run_tool('tools/train.py', STUDENT, '--work-dir', work, '--resume', '--cfg-options',
                   'train_cfg.max_epochs=2', *opts)
    return work, log


def test_resume_continues_from_the_saved_epoch(trained):
    work, log = trained
    assert 'resumed epoch: 1, iter: 2' in log
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    ckpt = load_checkpoint_file(osp.join(work, 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 4
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_checkpoint_loads_as_teacher_ckpt_in_a_kd_config(trained, tmp_path):
    work, _ = trained
    teacher_ckpt = osp.join(work, 'epoch_2.pth')
    # the KD config's teacher is resnet20; use the student's architecture so the checkpoint fits it
    log = run_tool('tools/train.py', KD, '--work-dir', str(tmp_path), '--cfg-options',
                   f'model.teacher_ckpt={teacher_ckpt}',
                   'model.teacher.backbone.arch=resnet8x0.5', 'model.teacher.head.in_channels=32',
                   'train_cfg.max_epochs=1', 'train_dataloader.batch_size=150',
                   'train_cfg.val_interval=1')
    assert f'Loads checkpoint by local backend from path: {teacher_ckpt}' in log
    assert 'distill.loss_kl' in log
    state = load_checkpoint_file(teacher_ckpt)['state_dict']
    distilled = load_checkpoint_file(osp.join(str(tmp_path), 'epoch_1.pth'))['state_dict']
    # the frozen teacher inside the KD checkpoint still holds exactly the loaded weights
    for key, value in state.items():
        torch.testing.assert_close(distilled[f'teacher.{key}'], value)


def test_missing_teacher_checkpoint_names_the_path(tmp_path):
    missing = str(tmp_path / 'nope' / 'teacher.pth')
    proc = subprocess.run([sys.executable, 'tools/train.py', KD, '--work-dir', str(tmp_path), '--cfg-options',
                           f'model.teacher_ckpt={missing}'], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'WeightsUnavailable' in proc.stderr  # tools/train.py's pre-flight weight check, before anything is built
    assert f"model.teacher_ckpt = '{missing}': file not found" in proc.stderr
    assert 'Epoch(train)' not in proc.stdout + proc.stderr  # failed before training started


def test_non_allowlisted_global_is_refused_and_opt_in_names_the_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'extra': Evil()}, path)
    with pytest.raises(pickle.UnpicklingError) as err:
        load_checkpoint_file(path)
    assert path in str(err.value) and TRUSTED_ENV in str(err.value) and 'Evil' in str(err.value)
    monkeypatch.setenv(TRUSTED_ENV, path)
    assert isinstance(load_checkpoint_file(path)['extra'], Evil)


def test_getattr_is_only_allowed_on_history_buffer_statistics(tmp_path):
    for i, payload in enumerate((GetattrOnAllowedClass(), GetattrOnHistoryBuffer())):
        path = str(tmp_path / f'getattr{i}.pth')
        torch.save({'x': payload}, path)
        with pytest.raises(pickle.UnpicklingError, match='getattr'):
            load_checkpoint_file(path)
    assert restricted_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError):
        restricted_getattr(HistoryBuffer, '__init__')


def test_tools_test_evaluates_the_saved_checkpoint(trained):
    work, _ = trained
    log = run_tool('tools/test.py', STUDENT, osp.join(work, 'epoch_2.pth'), '--work-dir', osp.join(work, 'test'))
    assert 'Epoch(test)' in log and 'accuracy/top1' in log
