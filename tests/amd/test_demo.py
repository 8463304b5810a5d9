"""The AMD demo row runs the whole chain (quick mode) and reports the exported student."""
import torch
from mmengine.config import Config

from mmkd_ext.amd.demo import CONFIG, run_demo
from mmkd_ext.demo_runner import DemoContext
from mmkd_ext.registry import MODELS


def test_demo_row_runs_the_chain_in_quick_mode(tmp_path, digits_root):
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(CONFIG).model.teacher)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    ctx = DemoContext(str(tmp_path), ckpt, 10.0, [0], quick=True)
    (row, ) = run_demo(ctx)
    assert row.name == 'AMD' and len(row.accuracies) == 1 and 0 <= row.accuracies[0] <= 100
    assert '% FLOPs' in row.note
    assert (tmp_path / 'amd_seed0' / 'export' / 'student.pth').exists()
