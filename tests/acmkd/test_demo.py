"""The ACMKD rows of the demo table (quick mode, one seed, random teacher)."""
import glob
import json
import os.path as osp

import pytest

from mmkd_ext.acmkd.demo import STUDENTS, run_demo, student_accuracies
from mmkd_ext.demo_runner import DemoContext


def test_student_accuracies_read_each_students_top1():
    metrics = {'resnet8.accuracy/top1': 80.0, 'rednet.accuracy/top1': 85.0, 'vit.accuracy/top1': 70.0,
               'ensemble.accuracy/top1': 90.0}
    assert student_accuracies(metrics) == {'resnet8': 80.0, 'rednet': 85.0, 'vit': 70.0}


def test_demo_rows_report_the_resnet8x0_5_student_and_the_ensemble_of_the_final_validation(digits_root, tmp_path):
    ctx = DemoContext(str(tmp_path), None, 0.0, [0], quick=True)
    student, ensemble = run_demo(ctx)
    assert student.name.startswith('ACMKD resnet8x0.5') and ensemble.name.startswith('ACMKD ensemble')
    scalars = glob.glob(osp.join(ctx.work_dir('acmkd', 0), '*', 'vis_data', 'scalars.json'))
    records = [json.loads(line) for line in open(scalars[0])]
    vals = [r for r in records if 'ensemble.accuracy/top1' in r]
    assert len(vals) == 1  # validated once, after the last epoch: nothing chosen on val
    # the resnet8x0.5 student whatever the others reached (no best-of-three on the validation split)
    assert student.accuracies == [pytest.approx(vals[0]['resnet8.accuracy/top1'])]
    assert ensemble.accuracies == [pytest.approx(vals[0]['ensemble.accuracy/top1'])]
    assert all(s in student.note for s in STUDENTS) and student.wall_s > 0
    assert (student.budget['steps'], student.budget['images']) == (4, 64)  # quick: 2 epochs x ceil(64 / 32)
    assert not glob.glob(osp.join(ctx.work_dir('acmkd', 0), 'best_*.pth'))
