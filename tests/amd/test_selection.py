"""NPSD and the selection rules on hand-made accuracy curves (METHODS.md §1.6)."""
import os.path as osp

import pytest

from mmkd_ext.amd.flops import candidate_scales
from mmkd_ext.amd.selection import (
    npsd,
    plot_selection,
    select,
    select_lambda_tradeoff,
    select_npsd_threshold,
    select_oracle,
)

SCALES = [0.9, 0.7, 0.5, 0.3]
# accuracy drops 0.01, 0.02, then 0.10 per 0.2 of scale
ACC = [0.90, 0.89, 0.87, 0.77]


def test_candidate_grid_is_uniform_and_ends_at_the_student():
    assert candidate_scales(0.1, 9) == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert candidate_scales(0.15, 1) == pytest.approx([0.15])


def test_npsd_is_accuracy_lost_per_unit_of_scale():
    assert npsd(SCALES, ACC) == pytest.approx([0.05, 0.10, 0.50])


def test_lambda_tradeoff_picks_the_argmax_of_accuracy_plus_lambda_sparsity():
    # objective with lambda = 0.2: 0.92, 0.95, 0.97, 0.91 -> the 0.5 candidate
    assert select_lambda_tradeoff(SCALES, ACC, lam=0.2) == 2
    # lambda = 0: pure accuracy -> the largest candidate
    assert select_lambda_tradeoff(SCALES, ACC, lam=0.0) == 0
    # a huge lambda prefers the smallest model
    assert select_lambda_tradeoff(SCALES, ACC, lam=5.0) == 3


def test_lambda_tradeoff_is_clamped_to_the_target_scale():
    assert select_lambda_tradeoff(SCALES, ACC, lam=5.0, min_scale=0.5) == 2


def test_npsd_threshold_stops_before_the_curve_breaks():
    assert select_npsd_threshold(SCALES, ACC, threshold=0.2) == 2  # slopes .05, .10 < .2; .5 breaks
    assert select_npsd_threshold(SCALES, ACC, threshold=0.08) == 1
    assert select_npsd_threshold(SCALES, ACC, threshold=0.01) == 0
    assert select_npsd_threshold(SCALES, ACC, threshold=1.0) == 3


def test_oracle_picks_the_best_distilled_student():
    assert select_oracle([0.70, 0.74, 0.72, 0.74]) == 1


def test_select_dispatch_and_bad_inputs():
    assert select('npsd_threshold', SCALES, ACC, npsd_threshold=0.2) == 2
    with pytest.raises(ValueError, match='unknown selection rule'):
        select('best', SCALES, ACC)
    with pytest.raises(ValueError, match='needs student_accuracies'):
        select('oracle', SCALES, ACC)
    with pytest.raises(ValueError, match='strictly decreasing'):
        npsd([0.3, 0.5], [0.8, 0.9])
    with pytest.raises(ValueError, match='fractions'):
        npsd(SCALES, [90, 89, 87, 77])


def test_plot_writes_a_png(tmp_path):
    path = plot_selection(str(tmp_path / 'sel.png'), SCALES, ACC, 2, teacher_accuracy=0.92)
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert osp.getsize(path) > 1000
