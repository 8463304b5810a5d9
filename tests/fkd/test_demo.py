"""The FKD row of the main demo (mmkd_ext/fkd/demo.py), in quick mode."""
import glob
import os.path as osp

import torch

from mmkd_ext.demo_runner import DemoContext
from mmkd_ext.fkd.demo import run_demo
from mmkd_ext.fkd.store import LabelStore


def test_demo_row_generates_labels_then_trains_teacher_free(tmp_path, teacher_ckpt):
    ctx = DemoContext(work_root=str(tmp_path), teacher_ckpt=teacher_ckpt, teacher_accuracy=0.0, seeds=[0], quick=True)
    (row, ) = run_demo(ctx)
    assert row.name.startswith('FKD') and len(row.accuracies) == 1 and 0.0 <= row.accuracies[0] <= 100.0
    (store_dir, ) = glob.glob(osp.join(str(tmp_path), 'fkd_labels_*'))
    store = LabelStore(store_dir)
    assert len(store) == 300 and store.num_crops == 2
    assert osp.isfile(osp.join(ctx.work_dir('fkd', 0), 'epoch_2.pth'))
    assert 'labels once' in row.note
    # M = epochs crops, one per image and step, each used once: 2 epochs x 10 steps of 32 images
    assert row.budget['steps'] == 20 and row.budget['images'] == 300


def test_demo_row_runs_again_after_the_teacher_was_retrained(tmp_path, teacher_ckpt):
    # a second `make demo` retrains the teacher: the first run's store must not block (or be reused by) the second
    ctx = DemoContext(work_root=str(tmp_path), teacher_ckpt=teacher_ckpt, teacher_accuracy=0.0, seeds=[0], quick=True)
    run_demo(ctx)
    ckpt = torch.load(teacher_ckpt, weights_only=False)
    ckpt['state_dict'] = {k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt['state_dict'].items()}
    retrained = str(tmp_path / 'retrained.pth')
    torch.save(ckpt, retrained)
    (row, ) = run_demo(DemoContext(str(tmp_path), retrained, 0.0, [0], quick=True))
    assert row.name.startswith('FKD') and len(glob.glob(osp.join(str(tmp_path), 'fkd_labels_*'))) == 2
