"""tools/misc/multi_seed.py: one run per seed through tools/train.py, mean +/- std of the final metric."""
import glob
import json
import os.path as osp
import statistics

from mmengine.config import Config

from tools.misc.multi_seed import main, summarise

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs/kd/resnet8x0.5_1xb32-30e_digits.py')


def last_val_metric(work_dir, key):
    """The last validation value MMEngine's LocalVisBackend wrote for ``key`` (independent of the tool)."""
    path, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    lines = [json.loads(line) for line in open(path)]
    return [line[key] for line in lines if key in line][-1]


def test_two_seeds_give_their_final_top1_and_its_mean_and_std(tmp_path, digits_root, capsys):
    spread = ','.join(str(i) for i in range(0, 500, 25))  # 20 val images of every class (sorted by class)
    shrink = ['train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=32',
              f'val_dataloader.dataset.indices=[{spread}]', 'log_level=WARNING']
    out = main([CONFIG, '--seeds', '0', '1', '--work-dir', str(tmp_path), '--cfg-options', *shrink])
    values = [last_val_metric(str(tmp_path / f'seed{s}'), 'accuracy/top1') for s in (0, 1)]
    assert out['metric'] == 'accuracy/top1' and out['seeds'] == {'0': values[0], '1': values[1]}
    assert out['mean'] == statistics.fmean(values) and out['std'] == abs(values[0] - values[1]) / 2 ** 0.5
    assert json.loads((tmp_path / 'multi_seed.json').read_text()) == out
    for s in (0, 1):  # each run really trained with its seed
        dumped, = glob.glob(str(tmp_path / f'seed{s}' / '*.py'))
        assert Config.fromfile(dumped).randomness.seed == s
    assert f"| mean +/- std (n=2) | {out['mean']:.2f} +/- {out['std']:.2f} |" in capsys.readouterr().out


def test_summary_is_the_mean_and_the_sample_std():
    # deviations 0.4, 0.6, -1.0 from 96.0: sample variance (0.16 + 0.36 + 1.0) / 2 = 0.76
    out = summarise([96.4, 96.6, 95.0])
    assert abs(out['mean'] - 96.0) < 1e-12 and abs(out['std'] - 0.76 ** 0.5) < 1e-12 and out['n'] == 3
