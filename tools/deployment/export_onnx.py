"""Export a student to ONNX (dynamic batch axis) and check it against PyTorch with onnxruntime.

    python tools/deployment/export_onnx.py STUDENT_CONFIG [STUDENT_CHECKPOINT] --out OUT.onnx \\
        [--opset N] [--input-size H W] [--batch N] [--output logits|scores] [--atol A] [--rtol R]

STUDENT_CONFIG / STUDENT_CHECKPOINT: a student's own config and weights, as written by
``tools/model_converters/extract_student.py`` (or AMD's and ACMKD's exports; the checkpoint defaults to the config's
``load_from``). The graph's input ``images`` is N x 3 x H x W float pixels 0..255 in the order the test pipeline
loads them (normalisation is inside); its outputs are classification logits/scores, segmentation whole-image
logits/scores, or a single-stage detector's raw head outputs (decoding and NMS are not exported). The parity
check runs both on seeded inputs of batch 1, 3 and 4 and exits non-zero above ``atol + rtol * |torch|``.
See mmkd_ext/deploy.py.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (registers mmkd_ext's backbones)
from mmkd_ext.deploy import add_onnx_args, export_from_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help="the student's own config")
    parser.add_argument('checkpoint', nargs='?', help="its weights (default: the config's load_from)")
    parser.add_argument('--out', required=True, help='output .onnx file')
    add_onnx_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return export_from_args(args.config, args.checkpoint, args.out, args)


if __name__ == '__main__':
    main()
