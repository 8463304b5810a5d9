""""Best" checkpoints follow the student's metric, never the teacher's (issue 18, item 2)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmkd_ext.checks import student_best_key

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DISTILLERS = ('SingleTeacherDistill', 'FpnTeacherDistill', 'VRMDistill', 'FKDDistill', 'AMDDistill', 'ACMKDDistill')
TEACHER_FREE_LOOPS = (None, 'ValLoop')  # plain val loops: only the student is evaluated


def test_auto_skips_the_teacher_metrics_by_hand():
    assert student_best_key({'teacher.coco/bbox_mAP': 0.3, 'coco/bbox_mAP': 0.1}) == 'coco/bbox_mAP'
    assert student_best_key({'teacher.coco/bbox_mAP': 0.3}) is None  # a detector without detections yet


def distillation_configs():
    for path in sorted(glob.glob(osp.join(ROOT, 'configs/*/*.py'))):
        name = osp.basename(path)
        if '_base_' not in path and not name.startswith(('search_', 'labels_')):
            yield osp.relpath(path, ROOT)


@pytest.mark.parametrize('config', list(distillation_configs()))
def test_every_distillation_config_saves_best_by_the_student(config):
    cfg = Config.fromfile(osp.join(ROOT, config))
    if cfg.model.get('type') not in DISTILLERS:
        return
    key = cfg.default_hooks.checkpoint.get('save_best')
    loop = cfg.get('val_cfg', {}).get('type')
    assert key is not None, f'{config} saves no best checkpoint'
    assert not key.startswith('teacher.')
    if cfg.model.type == 'AMDDistill':  # its loop reports every candidate first: name the student's key
        assert key in ('accuracy/top1', 'mIoU')
    elif cfg.model.type == 'ACMKDDistill':
        assert key.split('.')[0] in ('ensemble', *cfg.model.students)
    elif key != 'auto':
        assert key in ('accuracy/top1', 'coco/bbox_mAP', 'mIoU')
    else:
        assert loop in TEACHER_FREE_LOOPS or loop.endswith('SingleTeacherDistillValLoop')


TINY = {'train_dataloader.dataset.indices': 8, 'train_dataloader.batch_size': 8, 'val_dataloader.dataset.indices': 8,
        'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'model.teacher_ckpt': None, 'log_level': 'WARNING'}
KD = 'kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'


def tiny_run(config: str, work_dir) -> Runner:
    """Train ``config`` one epoch on 8 images with a random teacher, validating once."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    options = dict(TINY, work_dir=str(work_dir))
    if cfg.train_dataloader.dataset.get('type') == 'HeldOutSubset':  # ACMKD ranks on held-out training images
        options.pop('train_dataloader.dataset.indices')
        options.update({'train_dataloader.dataset.dataset.indices': 20, 'train_dataloader.dataset.every': 2})
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.fixture(scope='module')
def kd_run(tmp_path_factory, digits_root):
    work_dir = tmp_path_factory.mktemp('kd')
    return tiny_run(KD, work_dir), work_dir


def best_files(work_dir) -> list:
    return sorted(osp.basename(p) for p in glob.glob(osp.join(str(work_dir), 'best_*_epoch_*.pth')))


def test_kd_writes_best_by_the_students_metric(kd_run):
    """SingleTeacherDistillValLoop (KD; VRM and KD-Zero are SingleTeacherDistill with other losses, same loop)."""
    assert best_files(kd_run[1]) == ['best_accuracy_top1_epoch_1.pth']


# AMDCandidatesValLoop and ACMKDValLoop; FKD's plain ValLoop has no teacher to report
@pytest.mark.parametrize('config, student_key', [
    ('amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py', 'accuracy_top1'),
    ('acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py', 'ensemble.accuracy_top1'),  # (+ best_<student>.pth)
])
def test_amd_and_acmkd_write_best_by_the_students_metric(config, student_key, tmp_path, digits_root):
    tiny_run(config, tmp_path)
    assert best_files(tmp_path) == [f'best_{student_key}_epoch_1.pth']


def test_an_evaluation_without_student_metrics_does_not_fix_best_on_the_teacher(kd_run, tmp_path):
    """The shapes CWD run: the student detected nothing at the first evaluation, 'auto' took the teacher's mAP."""
    runner = kd_run[0]
    runner._work_dir = str(tmp_path)  # a fresh CheckpointHook writes here, with no best score recorded yet
    for key in ('best_score', 'best_ckpt'):
        runner.message_hub.runtime_info.pop(key, None)
    hook = CheckpointHook(interval=1, save_best='auto')
    hook.before_train(runner)
    hook.after_val_epoch(runner, {'teacher.coco/bbox_mAP': 0.5})
    assert hook.key_indicators == ['auto'] and not glob.glob(str(tmp_path / 'best_*.pth'))
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.1, 'teacher.coco/bbox_mAP': 0.5})
    assert hook.key_indicators == ['coco/bbox_mAP']
    assert best_files(tmp_path) == ['best_coco_bbox_mAP_epoch_1.pth']
