"""The FKD row of the main demo (mmkd_ext/fkd/demo.py), in quick mode."""
import os.path as osp

from mmkd_ext.demo_runner import DemoContext
from mmkd_ext.fkd.demo import run_demo
from mmkd_ext.fkd.store import LabelStore


def test_demo_row_generates_labels_then_trains_teacher_free(tmp_path, teacher_ckpt):
    ctx = DemoContext(work_root=str(tmp_path), teacher_ckpt=teacher_ckpt, teacher_accuracy=0.0, seeds=[0], quick=True)
    (row, ) = run_demo(ctx)
    assert row.name == 'FKD' and len(row.accuracies) == 1 and 0.0 <= row.accuracies[0] <= 100.0
    store = LabelStore(osp.join(str(tmp_path), 'fkd_labels'))
    assert len(store) == 300 and store.num_crops == 2
    assert osp.isfile(osp.join(ctx.work_dir('fkd', 0), 'epoch_2.pth'))
    assert 'labels once' in row.note
