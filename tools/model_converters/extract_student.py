"""Extract the student of a distillation checkpoint as a plain mmpretrain / mmdet / mmseg model.

    python tools/model_converters/extract_student.py CONFIG CHECKPOINT --out DIR [--students NAME ...] \
        [--onnx [--opset N] [--input-size H W] [--batch N] [--output logits|scores] [--atol A] [--rtol R]]

CONFIG is the distillation config (a path or an ``mmkd_ext::`` path), CHECKPOINT its checkpoint (for AMD: the
work dir of ``tools/amd/run.py``). Writes ``DIR/<name>.py`` (the student's own config: model, test/val data and
evaluators, ``default_scope`` of its task package) and ``DIR/<name>.pth`` (``state_dict`` with the student's keys,
``meta``) for every student (``student``; ACMKD: one per peer). They load in the task package's inferencer, e.g.
``ImageClassificationInferencer('DIR/student.py', pretrained='DIR/student.pth')``, and in its ``tools/test.py``.
Works for SingleTeacherDistill / FpnTeacherDistill configs (configs/kd, KD-Zero), FKD, VRM, AMD and ACMKD.

``--onnx`` also writes ``DIR/<name>.onnx`` (dynamic batch axis) and checks it against PyTorch with onnxruntime;
a parity failure exits non-zero (see mmkd_ext/deploy.py and tools/deployment/export_onnx.py; needs the ``deploy``
extras: ``pip install -e .[deploy]``, installed by ``make env``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (compat layer; the rooms register what their students are)
from mmkd_ext.deploy import add_onnx_args, export_from_args  # noqa: E402
from mmkd_ext.extraction import extract_students  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='distillation config')
    parser.add_argument('checkpoint', help='its checkpoint (AMD: the pipeline work dir)')
    parser.add_argument('--out', required=True, help='output folder for <name>.py and <name>.pth')
    parser.add_argument('--students', nargs='+', help='students to write (ACMKD; default: all)')
    parser.add_argument('--onnx', action='store_true', help='also export DIR/<name>.onnx and check its parity')
    add_onnx_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    written = extract_students(args.config, args.checkpoint, args.out, args.students)
    for name, files in written.items():
        print(f"{name}: {files['config']} {files['checkpoint']}")
        if args.onnx:
            files['onnx'] = osp.join(args.out, f'{name}.onnx')
            export_from_args(files['config'], files['checkpoint'], files['onnx'], args)
    return written


if __name__ == '__main__':
    main()
