"""The demo table and picture (mmkd_ext/demo_report.py, tools/demo.py) on synthetic rows with hand-computed values.

With 2 degrees of freedom (3 seeds) Student's t has a closed form: P(|T| > t) = 1 - t / sqrt(t^2 + 2); its 97.5 %
quantile solves t / sqrt(t^2 + 2) = 0.95: t = sqrt(2 * 0.9025 / 0.0975) = 4.3027, so the 95 % interval of a mean
difference m with sd s over 3 seeds is m ± 4.3027 s / sqrt(3) = m ± 2.4842 s.
"""
import importlib.util
import json
import math
import os.path as osp

import pytest

from mmkd_ext.demo_report import format_table, paired_comparison, plot_table, verdict
from mmkd_ext.demo_runner import DemoRow

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
STUDENT = DemoRow('student', [94.0, 94.0, 94.0], 30.0, '', [0, 1, 2])
NOISY = DemoRow('noisy', [95.0, 96.0, 97.0], 40.0, '', [0, 1, 2])       # d = 1, 2, 3: mean 2, sd 1
CLEAR = DemoRow('clear', [96.0, 96.5, 97.0], 50.0, '', [0, 1, 2])       # d = 2, 2.5, 3: mean 2.5, sd 0.5
WORSE = DemoRow('worse', [90.0, 90.5, 91.0], 50.0, '', [0, 1, 2])       # d = -4, -3.5, -3: mean -3.5, sd 0.5
TEACHER = DemoRow('teacher', [97.5], 20.0, '', [0])


def p_two_dof(t):
    return 1.0 - abs(t) / math.sqrt(t * t + 2.0)


def test_paired_t_test_of_consistent_and_of_scattered_differences():
    noisy = paired_comparison(NOISY.by_seed, STUDENT.by_seed)
    t = 2.0 / (1.0 / math.sqrt(3))
    assert (noisy.mean_diff, noisy.sd_diff, noisy.above) == (2.0, 1.0, 3)
    assert noisy.t == pytest.approx(t) and noisy.p == pytest.approx(p_two_dof(t))  # 0.074
    assert not noisy.beyond_noise and verdict(noisy) == 'no (p=0.07)'
    clear = paired_comparison(CLEAR.by_seed, STUDENT.by_seed)
    assert clear.p == pytest.approx(p_two_dof(2.5 / (0.5 / math.sqrt(3))))  # t = 8.66, p = 0.013
    assert clear.beyond_noise and verdict(clear) == 'yes, above (p=0.013)'
    worse = paired_comparison(WORSE.by_seed, STUDENT.by_seed)
    assert worse.beyond_noise and worse.above == 0 and verdict(worse).startswith('yes, below')


def test_rows_of_other_seeds_or_one_seed_are_not_judged():
    assert paired_comparison(TEACHER.by_seed, STUDENT.by_seed) is None
    assert verdict(None) == 'not paired (other seeds)'
    one = paired_comparison({0: 95.0}, {0: 94.0})
    assert one.mean_diff == 1.0 and math.isnan(one.p) and not one.beyond_noise
    same = paired_comparison({0: 95.0, 1: 96.0}, {0: 94.0, 1: 95.0})  # d = 1, 1: sd 0
    assert same.p == 0.0 and same.beyond_noise
    with pytest.raises(ValueError, match='2 accuracies for seeds'):
        DemoRow('bad', [1.0, 2.0], 0.0, '', [0, 1, 2])


def test_table_shows_the_paired_difference_and_the_verdict_of_every_row():
    table = format_table([TEACHER, STUDENT, NOISY, CLEAR], STUDENT).splitlines()
    cells = {line.split(' | ')[0][2:]: line.split(' | ') for line in table[2:]}
    # clear: 2.5 ± 2.4842 * 0.5 = [1.258, 3.742]; noisy: 2 ± 2.4842 = [-0.484, 4.484] (includes 0: not beyond noise)
    assert cells['clear'][1:6] == ['96.50 ± 0.50', '+2.50 [+1.26, +3.74]', 'yes, above (p=0.013)', '3/3', '0,1,2']
    assert cells['noisy'][2:4] == ['+2.00 [-0.48, +4.48]', 'no (p=0.07)']
    assert cells['teacher'][2:4] == ['+3.50 (unpaired)', 'not paired (other seeds)']
    assert cells['student'][2] == '(reference)'


def test_table_states_each_rows_budget_from_its_plan():
    budget = dict(steps=300, images=300, views='v', teacher='30 (live)', chosen_on='nothing', extra_steps='')
    held_out = dict(budget, steps=40, images=270, extra_steps='joint: 36')
    rows = [DemoRow('a', [95.0, 96.0, 97.0], 1.0, '', [0, 1, 2], budget=budget),
            DemoRow('b', [95.0, 96.0, 97.0], 1.0, '', [0, 1, 2], budget=held_out)]
    header, _, _, a, b = format_table([STUDENT] + rows, STUDENT).splitlines()
    columns = header.split(' | ')
    assert columns[6:10] == ['optimizer steps per seed', 'training views per image', 'teacher forwards per image',
                             'chosen on (never val)']
    assert a.split(' | ')[6:10] == ['300', 'v', '30 (live)', 'nothing']
    assert b.split(' | ')[6] == '40 (270 images) + joint: 36'


def _has_colour(png, rgb, tol=0.02):
    import matplotlib.image as mpimg
    import numpy as np
    image = mpimg.imread(png)[..., :3]
    return bool((np.abs(image - np.array(rgb) / 255.0).max(axis=-1) < tol).any())


def test_picture_marks_rows_beyond_noise_green_or_red_and_others_grey(tmp_path):
    green, red = (44, 160, 44), (214, 39, 40)  # matplotlib tab:green, tab:red
    within = plot_table([NOISY], STUDENT, TEACHER, str(tmp_path / 'within.png'))
    assert not _has_colour(within, green) and not _has_colour(within, red)
    beyond = plot_table([NOISY, CLEAR, WORSE], STUDENT, TEACHER, str(tmp_path / 'beyond.png'))
    assert _has_colour(beyond, green) and _has_colour(beyond, red)


def test_demo_writes_table_json_and_picture_of_the_same_rows(tmp_path):
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.write_report(str(tmp_path), TEACHER, STUDENT, [NOISY, CLEAR], 600.0)
    md = (tmp_path / 'demo_table.md').read_text()
    assert md.strip() == format_table([TEACHER, STUDENT, NOISY, CLEAR], STUDENT)
    saved = json.loads((tmp_path / 'demo_table.json').read_text())
    assert saved['total_s'] == 600.0
    assert [(r['name'], r['seeds'], r['accuracies']) for r in saved['rows']][2] == ('noisy', [0, 1, 2],
                                                                                   [95.0, 96.0, 97.0])
    assert (tmp_path / 'demo_table.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_demo_runs_rows_in_two_worker_processes_and_counts_their_cpu_time(tmp_path):
    """`make demo` runs the rows side by side in spawned workers (one per core): the table keeps its order, every
    row has the same seeds, and the demo's CPU seconds include the workers' (which did all the training)."""
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rows = demo.main(['--quick', '--seeds', '0', '1', '--methods', 'fkd', '--jobs', '2',
                      '--work-dir', str(tmp_path)])
    assert [r.name.split(' ')[0] for r in rows] == ['teacher', 'student', 'vanilla', 'vanilla', 'FKD']
    assert [r.seeds for r in rows[1:]] == [[0, 1]] * 4
    assert [r.budget['steps'] for r in rows[1:]] == [20] * 4  # quick: 2 epochs of 10 steps, every row
    saved = json.loads((tmp_path / 'demo_table.json').read_text())
    assert [r['accuracies'] for r in saved['rows']] == [r.accuracies for r in rows]
    row_cpu = sum(r['cpu_s'] for r in saved['rows'])
    assert row_cpu > 5.0 and saved['total_cpu_s'] >= row_cpu  # the parent alone trained nothing
    assert all((tmp_path / f'{key}_seed1').is_dir() for key in ('student', 'kd', 'kd_t1', 'fkd'))
