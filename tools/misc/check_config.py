"""Run a config end to end on stand-in data before launching it for real (see mmkd_ext/config_check.py).

    python tools/misc/check_config.py CONFIG [CONFIG ...] [--device cpu|cuda] [--iters N] [--shrink] \
        [--work-dir DIR] [--keep-checkpoints] [--cfg-options k=v ...]

Steps (one line each, with time and peak memory): build, train N iterations, val with the real metric, checkpoint,
resume for one more epoch/iteration, tools/test.py on the checkpoint; search / label / pipeline configs run their
tool instead (KD-Zero search with two candidates, FKD labels then training, the AMD pipeline and its export, ACMKD
training then student export). Weights that would be downloaded or are missing start from random initialisation,
one line per weight. The checkpoints a check writes are deleted when it ends unless --keep-checkpoints.
Exits non-zero naming the step that failed.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.config_check import ConfigCheckFailed, check_config, record_times, render_times_table  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Check that configs run end to end on stand-in data')
    parser.add_argument('configs', nargs='*', help='config file(s)')
    parser.add_argument('--table', action='store_true',
                        help='print the README table of the recorded check times (work_dirs/config_check_times.json)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--iters', type=int, default=2, help='training iterations of the short schedule')
    parser.add_argument('--shrink', action='store_true',
                        help='smaller inputs and batches for a CPU (sizes only: same models and pipeline steps)')
    parser.add_argument('--work-dir', help='work dir (default work_dirs/check/<config name>)')
    parser.add_argument('--keep-checkpoints', action='store_true',
                        help='keep the checkpoints the check writes (default: deleted when each check ends; a '
                             'detection or AMD check writes several GB)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        print(render_times_table())
        return 0
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda: no CUDA device is visible to PyTorch')
    failed = []
    for config in args.configs:
        work_dir = args.work_dir if len(args.configs) == 1 else None
        try:
            report = check_config(config, work_dir, device=args.device, iters=args.iters,
                                  shrink_inputs=args.shrink, cfg_options=args.cfg_options,
                                  keep_checkpoints=args.keep_checkpoints)
            if args.shrink and args.device == 'cpu' and not args.cfg_options:
                record_times(report)
        except ConfigCheckFailed as err:
            print(f'[check] {config}: FAILED at step {err.step!r}', file=sys.stderr)
            failed.append((config, err.step))
    if failed:
        for config, step in failed:
            print(f'[check] FAILED {config} at {step}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
