"""tools/misc/gpu_check: the plan, the log parsing, the table and the no-GPU exit (the GPU runs need a GPU)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location('gpu_check', osp.join(ROOT, 'tools/misc/gpu_check.py'))
gc = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # a tool, not a package module
spec.loader.exec_module(gc)

LOG = """\
20:00:01 - INFO - Epoch(train) [1][ 1/10]  eta: 0:00:09  time: 1.0000  data_time: 0.5  memory: 300  loss: 2.3
20:00:02 - INFO - Epoch(train) [1][ 2/10]  eta: 0:00:08  time: 0.9000  data_time: 0.1  memory: 512  loss: 2.2
20:00:02 - INFO - Epoch(train) [1][ 3/10]  eta: 0:00:07  time: 0.1000  data_time: 0.0  memory: 512  loss: 2.1
20:00:02 - INFO - Epoch(train) [1][ 4/10]  eta: 0:00:06  time: 0.1000  data_time: 0.0  memory: 512  loss: 2.0
20:00:03 - INFO - Epoch(train) [1][ 5/10]  eta: 0:00:05  time: 0.3000  data_time: 0.0  memory: 512  loss: 1.9
20:00:04 - INFO - Epoch(val) [1][10/16]    eta: 0:00:01  time: 0.0500  data_time: 0.0  memory: 100
"""


def test_parse_log_drops_two_warm_up_iterations_and_ignores_validation():
    parsed = gc.parse_log(LOG)
    assert parsed['its'] == pytest.approx(3 / 0.5)  # iterations 3-5: 0.1 + 0.1 + 0.3 s
    assert parsed['peak_mib'] == 512 and parsed['seconds'] is None


def test_the_probe_result_wins_over_logged_memory():
    parsed = gc.parse_log(LOG + gc.RESULT_TAG + '{"peak_mib": 700.5, "seconds": 12.0}\n')
    assert (parsed['peak_mib'], parsed['seconds']) == (700.5, 12.0)
    assert gc.parse_log('no iterations here')['its'] is None


def test_last_error_names_the_exception():
    text = 'Traceback (most recent call last):\n  File "x.py"\nRuntimeError: CUDA out of memory\n\nexit\n'
    assert gc.last_error(text) == 'RuntimeError: CUDA out of memory'
    assert gc.last_error('just a line\n') == 'just a line'


def test_table_lists_every_row_with_numbers_reasons_and_a_summary():
    rows = [gc.Row('kd/cls', 'ok', 123.456, 1024.4, 9.6), gc.Row('acmkd/cls+amp', 'FAIL', note='ValueError: a|b'),
            gc.Row('kd_zero/det', 'skipped', note='COCO-only')]
    assert gc.format_table(rows, 'GPU check on X').splitlines() == [
        'GPU check on X',
        '| check | it/s | peak GPU MiB | wall s | status |', '|---|---:|---:|---:|---|',
        '| kd/cls | 123.5 | 1024 | 10 | ok |',
        '| acmkd/cls+amp | - | - | - | FAIL: ValueError: a/b |',
        '| kd_zero/det | - | - | - | skipped: COCO-only |',
        '', '1 ok, 1 failed, 1 skipped']


def test_skip_reason_says_why_nothing_runs():
    assert gc.gpu_skip_reason(True, '2.14.1', '13.0') == ''
    assert 'CPU build' in gc.gpu_skip_reason(False, '2.14.1+cpu', None)
    assert 'no CUDA device' in gc.gpu_skip_reason(False, '2.14.1', '13.0')


@pytest.fixture(scope='module')
def checks():
    return gc.plan_checks('work_dirs/gpu_check', 20)


def test_plan_covers_every_method_task_stage_amp_and_dist_train(checks, monkeypatch):
    """Each method x task demo config runs every stage of its room's run plan (tools/misc/check_config.py)."""
    names = [c.name for c in checks]
    for name in ('kd/cls', 'kd/det', 'kd/seg', 'vrm/cls', 'kd_zero/cls', 'kd_zero/seg', 'kd_zero/cls search',
                 'acmkd/cls', 'fkd/cls', 'amd/cls', 'amd/seg'):
        assert name in names and name + '+amp' in names
        amp = checks[names.index(name + '+amp')]
        assert amp.argv[:2] == ['tools/misc/check_config.py', amp.argv[1]] and '--amp' in amp.argv
        assert amp.argv[amp.argv.index('--device') + 1] == 'cuda'
    stages = {c.name: c.stages for c in checks}
    assert stages['fkd/cls'].startswith('labels > training')
    assert stages['kd_zero/cls search'].startswith('search (') and ' > best' in stages['kd_zero/cls search']
    assert stages['amd/cls'].startswith('pipeline (importance > joint_i > select_i > final (pruned teacher) > export')
    assert 'reaches: epochs past teacher_attention_epochs' in stages['acmkd/cls'] and 'export' in stages['acmkd/cls']
    assert any('tools/dist_train.sh' in c.argv for c in checks)
    for c in checks:  # every config and script the plan names exists
        assert all(osp.exists(osp.join(ROOT, a)) for a in c.argv if a.endswith(('.py', '.sh'))), c.name
    assert [c.name for c in checks if c.skip] == ['kd_zero/det (RetinaNet / Faster R-CNN pairs)']
    monkeypatch.setattr(gc, 'short_run_options', lambda config, iters: [])  # configs were read above
    assert len(gc.plan_checks('w', 20, amp=False)) == len(checks) - 11


def test_list_shows_every_stage(capsys):
    assert gc.main(['--list', '--only', 'amd/cls']) == 0
    out = capsys.readouterr().out
    assert 'stages: pipeline (importance > joint_i > select_i > final (pruned teacher) > export; reaches: ' in out
    assert 'teacher/cls: tools/train.py' in out


def test_only_keeps_prerequisites(checks):
    chosen = [c.name for c in gc.select(checks, 'fkd/cls+amp')]
    assert chosen == ['teacher/cls', 'fkd/cls+amp']


def test_iteration_configs_stop_after_iters_and_epoch_configs_after_one_epoch():
    seg = gc.short_run_options(osp.join(ROOT, 'configs/kd/pspnet_r18-d8_1xb4-600it_cityscapes-demo.py'), 7)
    cls = gc.short_run_options(osp.join(ROOT, 'configs/kd/resnet20_1xb32-30e_digits.py'), 7)
    assert 'train_cfg.max_iters=7' in seg and 'train_cfg.max_epochs=1' in cls


def test_without_a_gpu_the_check_exits_saying_so(capsys):
    assert gc.main([]) == 3  # this machine has no GPU
    assert 'no CUDA device is visible' in capsys.readouterr().err
    out = subprocess.run(['bash', 'tools/misc/gpu_check.sh'], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, 'PYTHON': sys.executable}, timeout=120)
    assert out.returncode == 3
    assert 'no CUDA device is visible' in out.stderr and 'skipped: every check' in out.stderr


def test_ops_check_compares_the_stand_ins_with_mmcv_on_cpu_without_a_gpu(capsys):
    gc.ops_check()  # raises when a stand-in differs from mmcv's CPU kernels
    assert 'mmcv ops on cpu equal the CPU results' in capsys.readouterr().out


def test_checks_that_would_overrun_the_budget_are_skipped_saying_so():
    now = [0.0]

    def run_one(check):  # each check takes 100 s
        now[0] += 100
        return gc.Row(check.name, 'ok', seconds=100)
    checks = [gc.Check(f'c{i}', []) for i in range(4)]
    rows = gc.run_checks(checks, 250, run_one, clock=lambda: now[0])
    assert [r.status for r in rows] == ['ok', 'ok', 'skipped', 'skipped']  # the third would end at 300 s
    assert rows[2].note == 'time budget of 250 s spent'
