"""Extract the student of a distillation checkpoint as a plain mmpretrain / mmdet / mmseg model.

    python tools/model_converters/extract_student.py CONFIG CHECKPOINT --out DIR [--students NAME ...]

CONFIG is the distillation config (a path or an ``mmkd_ext::`` path), CHECKPOINT its checkpoint (for AMD: the
work dir of ``tools/amd/run.py``). Writes ``DIR/<name>.py`` (the student's own config: model, test/val data and
evaluators, ``default_scope`` of its task package) and ``DIR/<name>.pth`` (``state_dict`` with the student's keys,
``meta``) for every student (``student``; ACMKD: one per peer). They load in the task package's inferencer, e.g.
``ImageClassificationInferencer('DIR/student.py', pretrained='DIR/student.pth')``, and in its ``tools/test.py``.
Works for SingleTeacherDistill / FpnTeacherDistill configs (configs/kd, KD-Zero), FKD, VRM, AMD and ACMKD.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (compat layer; the rooms register what their students are)
from mmkd_ext.extraction import extract_students  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='distillation config')
    parser.add_argument('checkpoint', help='its checkpoint (AMD: the pipeline work dir)')
    parser.add_argument('--out', required=True, help='output folder for <name>.py and <name>.pth')
    parser.add_argument('--students', nargs='+', help='students to write (ACMKD; default: all)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    written = extract_students(args.config, args.checkpoint, args.out, args.students)
    for name, files in written.items():
        print(f"{name}: {files['config']} {files['checkpoint']}")
    return written


if __name__ == '__main__':
    main()
