"""Generate the built-in demo datasets under data/demo/ (deterministic; a few MB).

    python tools/misc/make_demo_data.py [--root data/demo] [--tasks cls det seg] [--force]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmkd_ext.demo_data import make_cityscapes_scenes, make_digits, make_shapes_coco  # noqa: E402

MAKERS = dict(cls=(make_digits, 'digits'), det=(make_shapes_coco, 'shapes'), seg=(make_cityscapes_scenes, 'cityscapes'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='data/demo')
    parser.add_argument('--tasks', nargs='+', choices=sorted(MAKERS), default=sorted(MAKERS))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='regenerate even if present')
    args = parser.parse_args(argv)
    for task in args.tasks:
        make, name = MAKERS[task]
        print(f'{task}: {make(osp.join(args.root, name), seed=args.seed, force=args.force)}')


if __name__ == '__main__':
    main()
