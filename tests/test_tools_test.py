"""tools/test.py on a distilled checkpoint: the teacher's weights come from the checkpoint, not its old file."""
import os.path as osp

import torch
from mmengine.config import Config
from mmrazor.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
KD_CONFIG = osp.join(ROOT, 'configs/kd/kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')


def test_distilled_checkpoint_is_evaluated_without_the_teacher_file(tmp_path, digits_root, capsys):
    from tools.test import main
    cfg = Config.fromfile(KD_CONFIG)
    assert not osp.exists(osp.join(str(tmp_path), 'no_teacher.pth'))
    cfg.model.teacher_ckpt = None
    torch.manual_seed(0)
    algo = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(state_dict=algo.state_dict(), meta={}), ckpt)
    missing_teacher = str(tmp_path / 'no_teacher.pth')  # the teacher file of the run is gone
    metrics = main([KD_CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'),
                    '--cfg-options', f'model.teacher_ckpt={missing_teacher}', 'test_dataloader.dataset.indices=8'])
    assert 'accuracy/top1' in metrics
    assert "holds the teacher's weights" in capsys.readouterr().out
