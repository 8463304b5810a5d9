"""Generate an FKD label store: teacher soft labels of M random crops per training image.

    python tools/fkd/generate_labels.py LABEL_CONFIG [--cfg-options k=v ...]

Resumable: run the same command again after an interruption; finished images are kept and the
unfinished batches are regenerated (same crops, same batches), so the store is identical to an
uninterrupted run. Several processes, each writing a disjoint set of shards:

    bash tools/fkd/dist_generate_labels.sh LABEL_CONFIG N

Teacher precision: ``--amp bf16`` (CPU or GPU) / ``--amp fp16`` (GPU only) runs the teacher forward under
autocast, ``--channels-last`` in NHWC; ``--compare-fp32 N`` then prints the stored labels' max |difference|
to an fp32 teacher on the first N images (run it again on a finished store to only compare).

See mmkd_ext/fkd/generation.py for the config keys and mmkd_ext/fkd/store.py for the store format.
"""
import argparse
import os.path as osp
import sys

from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmkd_ext  # noqa: E402,F401  (compat layer + registration, before mmrazor loads)
from mmkd_ext.checks import check_cfg_options  # noqa: E402
from mmkd_ext.fkd.generation import AMP_DTYPES, compare_with_fp32, generate_labels  # noqa: E402
from mmkd_ext.launch import add_launcher_arg, exit_after_tool, setup_launcher  # noqa: E402
from mmkd_ext.weight_sources import check_weights_available  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Generate FKD region-level soft labels')
    parser.add_argument('config', help='label-generation config (teachers, label_dataset, fkd_generation)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings, e.g. fkd_generation.store_dir=/data/labels')
    add_launcher_arg(parser, '; rank r of WORLD_SIZE fills shards r, r + WORLD_SIZE, ... on its own GPU')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--stop-after', type=int, default=None,
                        help='stop after about this many images (a dry run; the same command resumes)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--amp', choices=tuple(AMP_DTYPES), default=None,
                        help='autocast dtype of the teacher forward (sets fkd_generation.amp; fp16 needs CUDA)')
    parser.add_argument('--channels-last', action='store_true',
                        help='run the teacher in NHWC memory format (sets fkd_generation.channels_last)')
    parser.add_argument('--compare-fp32', type=int, default=None, metavar='N',
                        help='when the store is complete, print the max |difference| of the first N images\' stored '
                             'labels to an fp32 teacher (rank 0)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file {args.config!r} does not exist')
    cfg = Config.fromfile(args.config)
    check_cfg_options(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.amp is not None:
        cfg.fkd_generation.amp = args.amp
    if args.channels_last:
        cfg.fkd_generation.channels_last = True
    if args.compare_fp32 is not None and args.compare_fp32 < 1:
        raise ValueError(f'--compare-fp32 takes a number of images >= 1, got {args.compare_fp32}')
    check_weights_available(cfg)
    launch = setup_launcher(args.launcher)  # cuda:LOCAL_RANK is this rank's device ('auto' -> cuda)
    rank, world = launch.rank, launch.world_size
    report = generate_labels(cfg, rank=rank, world_size=world, stop_after=args.stop_after,
                             progress=not args.no_progress)
    print(f'[fkd] rank {rank}: {report.images} images, {report.crops} crops in {report.seconds:.1f} s '
          f'({report.crops_per_s:.1f} crops/s)')
    if args.compare_fp32 and rank == 0:
        if report.manifest is None:
            print('[fkd] --compare-fp32: the store is not complete yet (other ranks still writing, or --stop-after); '
                  'run the same command again once it is')
        else:
            print(f'[fkd] {compare_with_fp32(cfg, args.compare_fp32)}')
    return report


if __name__ == '__main__':
    main()
    exit_after_tool()  # under torchrun: no interpreter finalization after the group is closed
