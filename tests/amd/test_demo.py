"""The AMD demo row runs the whole chain (quick mode), reports the exported student, and re-runs later seeds."""
import json

import pytest
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
    ctx = DemoContext(str(tmp_path), ckpt, 10.0, [0, 1], quick=True)
    (row, ) = run_demo(ctx)
    assert row.name.startswith('AMD') and len(row.accuracies) == 2 and all(0 <= a <= 100 for a in row.accuracies)
    assert '% FLOPs' in row.note and 'seeds [0, 1]' in row.note
    for seed in (0, 1):
        assert (tmp_path / f'amd_seed{seed}' / 'export' / 'student.pth').exists()
    first = json.loads((tmp_path / 'amd_seed0' / 'amd_state.json').read_text())
    second = json.loads((tmp_path / 'amd_seed1' / 'amd_state.json').read_text())
    # the seed-independent importance is reused; the stage holding the student is trained again
    assert second['importance']['reused_from'] == str(tmp_path / 'amd_seed0')
    assert second['importance']['scores'] == first['importance']['scores']
    assert first['select_1']['split'] == 'held_out'  # the TA is chosen on held-out training images, not on val
    stage = 'final' if first['final']['trained'] else 'joint_1'
    assert 'reused_from' not in second[stage] and second[stage]['student'].startswith(str(tmp_path / 'amd_seed1'))


def test_demo_row_needs_a_seed(tmp_path):
    with pytest.raises(ValueError, match='at least one seed'):
        run_demo(DemoContext(str(tmp_path), 'unused.pth', 10.0, [], quick=True))
