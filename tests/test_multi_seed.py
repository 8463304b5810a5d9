"""tools/misc/multi_seed.py: one run per seed through tools/train.py, mean +/- std of the final metric."""
import glob
import json
import os.path as osp
import statistics
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

from tools.misc import multi_seed
from tools.misc.multi_seed import main, parse_args, seed_argv, summarise

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
    row = f"| mean +/- std (n=2) | {out['mean']:.2f} +/- {out['std']:.2f} |"
    assert row in capsys.readouterr().out and row in (tmp_path / 'multi_seed.md').read_text()


def test_summary_is_the_mean_and_the_sample_std():
    # deviations 0.4, 0.6, -1.0 from 96.0: sample variance (0.16 + 0.36 + 1.0) / 2 = 0.76
    out = summarise([96.4, 96.6, 95.0])
    assert abs(out['mean'] - 96.0) < 1e-12 and abs(out['std'] - 0.76 ** 0.5) < 1e-12 and out['n'] == 3


def fake_training(monkeypatch, top1):
    """Replace tools/train.py by a run whose final validation gives ``top1[seed]``; returns the seeds trained."""
    trained = []

    def train(argv):
        seed = int(argv[-2].split('=')[1])  # randomness.seed=N (seed_argv)
        trained.append(seed)
        return SimpleNamespace(message_hub=SimpleNamespace(
            log_scalars={'val/accuracy/top1': HistoryBuffer([top1[seed]], [1])}))

    monkeypatch.setattr(multi_seed, 'train_main', train)
    return trained


def test_rerun_skips_finished_seeds_and_writes_the_table(tmp_path, monkeypatch):
    trained = fake_training(monkeypatch, {0: 90.0, 1: 94.0, 2: 98.0})
    main([CONFIG, '--seeds', '0', '1', '--work-dir', str(tmp_path)])
    out = main([CONFIG, '--seeds', '0', '1', '2', '--work-dir', str(tmp_path)])
    assert trained == [0, 1, 2]  # the rerun trained seed 2 only
    assert out['seeds'] == {'0': 90.0, '1': 94.0, '2': 98.0} and out['mean'] == 94.0 and out['std'] == 4.0
    assert '| mean +/- std (n=3) | 94.00 +/- 4.00 |' in (tmp_path / 'multi_seed.md').read_text()
    main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path), '--no-resume'])
    assert trained == [0, 1, 2, 0]


def test_rerun_with_other_settings_is_refused_naming_them(tmp_path, monkeypatch):
    trained = fake_training(monkeypatch, {0: 90.0})
    main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path)])
    with pytest.raises(ValueError, match=r"seed0/seed_result.json was trained with other settings "
                                         r"\['cfg_options', 'config_sha256'\]"):
        main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path), '--cfg-options', 'train_cfg.max_epochs=2'])
    assert trained == [0]


def test_unknown_metric_is_refused_before_the_first_seed_trains(tmp_path, monkeypatch):
    trained = fake_training(monkeypatch, {0: 90.0})
    with pytest.raises(KeyError, match="--metric 'acc/top1' is not a key the val_evaluator"):
        main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path), '--metric', 'acc/top1'])
    with pytest.raises(KeyError, match='top5'):  # the digits config's Accuracy reports top1 only
        main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path), '--metric', 'accuracy/top5'])
    assert trained == []
    out = main([CONFIG, '--seeds', '0', '--work-dir', str(tmp_path), '--metric', 'accuracy/top1'])
    assert out['metric'] == 'accuracy/top1' and trained == [0]


def test_slurm_launcher_is_accepted_and_passed_to_every_run():
    args = parse_args([CONFIG, '--launcher', 'slurm'])  # tools/slurm_run.sh appends --launcher slurm
    argv = seed_argv(args, 3, 'w')
    assert argv[argv.index('--launcher') + 1] == 'slurm'
