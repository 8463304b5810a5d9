"""Split an ACMKD training checkpoint into one standalone mmpretrain checkpoint per student.

    python tools/acmkd/export_students.py work_dirs/acmkd/epoch_30.pth --out-dir work_dirs/acmkd/students
    python tools/acmkd/export_students.py CKPT --out-dir DIR --students resnet8 vit

Each ``DIR/<student>.pth`` holds the student classifier's weights (no algorithm prefix, no attention
modules) and ``meta.model_cfg``, its mmpretrain model config; load it with
``mmengine.runner.load_checkpoint(classifier, path)``. (During training, ``ACMKDHook`` already writes
``best_<student>.pth`` in the same format whenever a student reaches its best validation accuracy.)
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (weights-only checkpoint loading)
from mmkd_ext.acmkd.export import export_students  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description='Export ACMKD students as mmpretrain checkpoints')
    parser.add_argument('checkpoint', help='ACMKD training checkpoint (epoch_N.pth, best_*.pth)')
    parser.add_argument('--out-dir', required=True, help='where <student>.pth files are written')
    parser.add_argument('--students', nargs='+', help='students to export (default: all)')
    args = parser.parse_args(argv)
    for name, path in export_students(args.checkpoint, args.out_dir, args.students).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
