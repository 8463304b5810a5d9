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


# one run per val loop: SingleTeacherDistillValLoop (KD; VRM and KD-Zero are SingleTeacherDistill with other
# losses, same loop), AMDCandidatesValLoop, ACMKDValLoop; FKD's plain ValLoop has no teacher to report
@pytest.mark.parametrize('config, student_key', [
    ('kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py', 'accuracy_top1'),
    ('amd/amd_resnet20_resnet20-p30_1xb32-6e_digits.py', 'accuracy_top1'),
    ('acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py', 'ensemble.accuracy_top1'),
])
def test_each_algorithm_writes_best_by_the_students_metric(config, student_key, tmp_path, digits_root):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', config))
    cfg.merge_from_dict(dict(TINY, work_dir=str(tmp_path)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    best = [osp.basename(p) for p in glob.glob(str(tmp_path / 'best_*_epoch_*.pth'))]  # (ACMKD adds best_<student>)
    assert best == [f'best_{student_key}_epoch_1.pth']


def test_an_evaluation_without_student_metrics_does_not_fix_best_on_the_teacher(tmp_path, digits_root):
    """The shapes CWD run: the student detected nothing at the first evaluation, 'auto' took the teacher's mAP."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py'))
    cfg.merge_from_dict(dict(TINY, work_dir=str(tmp_path), **{'default_hooks.checkpoint.save_best': None}))
    runner = Runner.from_cfg(cfg)
    runner.train()  # a trained runner to hand to a fresh CheckpointHook
    hook = CheckpointHook(interval=1, save_best='auto')
    hook.before_train(runner)
    hook.after_val_epoch(runner, {'teacher.coco/bbox_mAP': 0.5})
    assert hook.key_indicators == ['auto'] and not glob.glob(str(tmp_path / 'best_*.pth'))
    hook.after_val_epoch(runner, {'coco/bbox_mAP': 0.1, 'teacher.coco/bbox_mAP': 0.5})
    assert hook.key_indicators == ['coco/bbox_mAP']
    assert [osp.basename(p) for p in glob.glob(str(tmp_path / 'best_*.pth'))] == ['best_coco_bbox_mAP_epoch_1.pth']
