"""Generate an FKD label store: teacher soft labels of M random crops per training image.

    python tools/fkd/generate_labels.py LABEL_CONFIG [--cfg-options k=v ...]

Resumable: run the same command again after an interruption; finished images are kept and the
unfinished batches are regenerated (same crops, same batches), so the store is identical to an
uninterrupted run. Several processes, each writing a disjoint set of shards:

    bash tools/fkd/dist_generate_labels.sh LABEL_CONFIG N

See mmkd_ext/fkd/generation.py for the config keys and mmkd_ext/fkd/store.py for the store format.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (compat layer + registration, before mmrazor loads)
from mmkd_ext.checks import check_cfg_options  # noqa: E402
from mmkd_ext.fkd.generation import generate_labels  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate FKD region-level soft labels')
    parser.add_argument('config', help='label-generation config (teachers, label_dataset, fkd_generation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings, e.g. fkd_generation.store_dir=/data/labels')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='pytorch: one of WORLD_SIZE processes started by torchrun (RANK from the environment)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--stop-after', type=int, default=None,
                        help='stop after about this many images (a dry run; the same command resumes)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    check_cfg_options(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    rank, world = 0, 1
    if args.launcher == 'pytorch':
        if 'RANK' not in os.environ or 'WORLD_SIZE' not in os.environ:
            raise RuntimeError('--launcher pytorch needs RANK and WORLD_SIZE: start it with '
                               'tools/fkd/dist_generate_labels.sh CONFIG N (torchrun)')
        rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    report = generate_labels(cfg, rank=rank, world_size=world, stop_after=args.stop_after,
                             progress=not args.no_progress)
    print(f'[fkd] rank {rank}: {report.images} images, {report.crops} crops in {report.seconds:.1f} s '
          f'({report.crops_per_s:.1f} crops/s)')
    return report


if __name__ == '__main__':
    main()
