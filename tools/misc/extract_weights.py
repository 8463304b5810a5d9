"""Extract one model's weights from the checkpoint of a whole distillation run.

    python tools/misc/extract_weights.py RUN_CKPT OUT.pth --prefix architecture.   # the student
    python tools/misc/extract_weights.py RUN_CKPT OUT.pth --prefix teacher.        # the run's teacher

A distillation checkpoint holds every sub-model under its attribute name (``architecture.`` for the
student of MMRazor algorithms, ``teacher.``, ...). The output holds only the keys under ``--prefix``, with
the prefix removed, so it loads into the plain model (``teacher_ckpt=``, ``load_from=``,
``tools/test.py`` with the model's own config).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmkd_ext  # noqa: E402,F401  (checkpoint loading of torch>=2.6)
from mmkd_ext.weights import extract_prefix  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Extract a sub-model from a distillation checkpoint')
    parser.add_argument('checkpoint', help='checkpoint of a distillation run')
    parser.add_argument('out', help='output file')
    parser.add_argument('--prefix', default='architecture.', help='keys to keep (default: architecture., the student)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner.checkpoint import _load_checkpoint
    state_dict = extract_prefix(_load_checkpoint(args.checkpoint, map_location='cpu'), args.prefix)
    torch.save(dict(state_dict=state_dict, meta=dict(source=osp.abspath(args.checkpoint), prefix=args.prefix)),
               args.out)
    print(f'{len(state_dict)} tensors under {args.prefix!r} -> {args.out}')
    return args.out


if __name__ == '__main__':
    main()
