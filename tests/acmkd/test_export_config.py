"""ACMKD's exported students come with a config, so tools/test.py evaluates them (issue 18, item 7)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmrazor.registry import MODELS

from mmkd_ext.acmkd.export import export_students

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs/acmkd/acmkd_resnet20_3students_1xb32-30e_digits.py')


def test_exported_student_config_runs_tools_test(tmp_path, digits_root):
    from tools.test import main
    cfg = Config.fromfile(CONFIG)
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    algo = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'epoch_1.pth')  # what MMEngine's CheckpointHook + ACMKDHook write
    torch.save(dict(state_dict=algo.state_dict(),
                    meta=dict(cfg=cfg.pretty_text, acmkd=dict(student_cfgs=algo.student_cfgs))), ckpt)
    name = algo.student_names[0]
    path = export_students(ckpt, str(tmp_path / 'students'), [name])[name]
    student_cfg = osp.splitext(path)[0] + '.py'
    assert osp.isfile(student_cfg)
    metrics = main([student_cfg, path, '--work-dir', str(tmp_path / 'test'),
                    '--cfg-options', 'test_dataloader.dataset.indices=8'])
    assert 'accuracy/top1' in metrics
