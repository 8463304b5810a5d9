"""The ACMKD rows of the demo table (quick mode, one seed, random teacher)."""
import glob
import json
import os.path as osp

import pytest

from mmkd_ext.acmkd.demo import STUDENTS, best_student, run_demo
from mmkd_ext.demo_runner import DemoContext


def test_best_student_picks_highest_top1():
    metrics = {'resnet8.accuracy/top1': 80.0, 'rednet.accuracy/top1': 85.0, 'vit.accuracy/top1': 70.0,
               'ensemble.accuracy/top1': 90.0}
    assert best_student(metrics) == 'rednet'


def test_demo_rows_report_best_student_and_ensemble_of_the_final_validation(digits_root, tmp_path):
    ctx = DemoContext(str(tmp_path), None, 0.0, [0], quick=True)
    best, ensemble = run_demo(ctx)
    assert (best.name, ensemble.name) == ('ACMKD best student', 'ACMKD ensemble')
    scalars = glob.glob(osp.join(ctx.work_dir('acmkd', 0), '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0])]
    final = [r for r in records if 'ensemble.accuracy/top1' in r][-1]
    assert best.accuracies == [pytest.approx(max(final[f'{s}.accuracy/top1'] for s in STUDENTS))]
    assert ensemble.accuracies == [pytest.approx(final['ensemble.accuracy/top1'])]
    assert best.wall_s > 0
