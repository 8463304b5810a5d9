"""The KD-Zero row of the main demo (mmkd_ext/kd_zero/demo.py), in quick mode: search, then distil with the best."""
import json
import os.path as osp

import torch
from mmengine.config import Config

from mmkd_ext.demo_runner import DemoContext
from mmkd_ext.kd_zero.demo import QUICK_SEARCH, SEARCH_CONFIG, run_demo
from mmkd_ext.registry import MODELS


def test_demo_row_searches_then_distils_with_the_best_genome(tmp_path, digits_root):
    torch.set_num_threads(1)
    base = Config.fromfile(Config.fromfile(SEARCH_CONFIG).base_config)
    torch.manual_seed(0)
    teacher = MODELS.build(base.model.teacher)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    ctx = DemoContext(str(tmp_path), ckpt, 10.0, [0], quick=True)
    (row, ) = run_demo(ctx)
    assert row.name.startswith('KD-Zero') and len(row.accuracies) == 1 and 0.0 <= row.accuracies[0] <= 100.0
    search_dir = tmp_path / 'kd_zero_search'
    best = json.loads((search_dir / 'best_genome.json').read_text())
    assert f"searched {best['savings']['candidates']} candidates" in row.note
    assert best['savings']['candidates'] >= QUICK_SEARCH['population_size'] + QUICK_SEARCH['iterations']
    # the final run trained the searched distiller, not the default genome of the base config
    trained = Config.fromfile(str(search_dir / 'best_distiller_config.py'))
    assert trained.kd_zero_genome == best['genome']
    assert osp.isfile(osp.join(ctx.work_dir('kd_zero', 0), 'epoch_2.pth'))
