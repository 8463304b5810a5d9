"""Run a config end to end on stand-in data before launching it for real (see mmkd_ext/config_check/).

    python tools/misc/check_config.py CONFIG [CONFIG ...] [--device cpu|cuda] [--iters N] [--shrink] \
        [--work-dir DIR] [--keep-checkpoints] [--teacher-ckpt CKPT] [--amp] [--cfg-options k=v ...]

Steps (one line each, with time and peak memory): build, train N iterations, val with the real metric, checkpoint,
resume for one more epoch/iteration, tools/test.py on the checkpoint; a config a method room claims runs the stages
of that room's run plan instead (mmkd_ext/run_plans.py). Weights that would be downloaded or are missing start from
random initialisation, one line per weight. The checkpoints a check writes are deleted when it ends unless
--keep-checkpoints.
Every config of the call is checked (a missing file or a failed step does not stop the others); one summary line
per config at the end; exits 1 when any failed, 2 on a usage error (no config). The times of --shrink CPU checks
go to work_dirs/config_check_times.json under the current directory (WORK_DIR/config_check_times.json with
--work-dir); demo data is made under the current directory.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.config_check import (  # noqa: E402
    TIMES_FILE,
    ConfigCheckFailed,
    check_config,
    record_times,
    render_times_table,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Check that configs run end to end on stand-in data. Demo data is made under the current '
                    'working directory (data/demo/, where the configs point), stand-ins under data/standin/.')
    parser.add_argument('configs', nargs='*', help='config file(s) (or package::path)')
    parser.add_argument('--table', action='store_true',
                        help=f'print the README table of the recorded check times ({TIMES_FILE} under the current '
                             'directory)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--iters', type=int, default=2, help='training iterations of the short schedule')
    parser.add_argument('--shrink', action='store_true',
                        help='smaller inputs and batches for a CPU (sizes only: same models and pipeline steps)')
    parser.add_argument('--work-dir', help='work dir (default work_dirs/check/<config name>); with several configs, '
                                           'one sub-folder per config: WORK_DIR/<config name>')
    parser.add_argument('--keep-checkpoints', action='store_true',
                        help='keep the checkpoints the check writes (default: deleted when each check ends; a '
                             'detection or AMD check writes several GB)')
    parser.add_argument('--teacher-ckpt', help='teacher checkpoint of every stage that distils (default: the '
                                               "config's, random initialisation when it is missing)")
    parser.add_argument('--amp', action='store_true', help='train with AmpOptimWrapper (GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    args = parser.parse_args(argv)
    if not args.configs and not args.table:
        parser.error('give at least one CONFIG (or --table)')
    return args


def work_dir_of(config: str, work_dir, several: bool):
    """``--work-dir`` for one config, ``--work-dir/<config name>`` for each of several, else None (the default)."""
    if work_dir is None or not several:
        return work_dir
    return osp.join(work_dir, osp.splitext(osp.basename(config.split('::')[-1]))[0])


def missing(config: str) -> bool:
    """Whether ``config`` names no file (``package::path`` configs are found by MMEngine)."""
    return '::' not in config and not osp.isfile(config)


def check_one(config: str, args) -> str:
    """Check ``config``; returns its summary status ('ok', 'FAILED at step ...' or 'no such config file')."""
    if missing(config):
        print(f'[check] {config}: no such config file (cwd {osp.abspath(".")}); check the path', file=sys.stderr)
        return 'no such config file'
    try:
        report = check_config(config, work_dir_of(config, args.work_dir, len(args.configs) > 1), device=args.device,
                              iters=args.iters, shrink_inputs=args.shrink, cfg_options=args.cfg_options,
                              keep_checkpoints=args.keep_checkpoints, teacher_ckpt=args.teacher_ckpt, amp=args.amp)
    except ConfigCheckFailed as err:
        print(f'[check] {config}: FAILED at step {err.step!r}', file=sys.stderr)
        return f'FAILED at step {err.step!r}'
    if args.shrink and args.device == 'cpu' and not (args.cfg_options or args.teacher_ckpt):
        record_times(report, osp.join(args.work_dir, osp.basename(TIMES_FILE)) if args.work_dir else TIMES_FILE)
    return f'ok ({report.seconds:.0f} s)'


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table:
        print(render_times_table())
        return 0
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--device cuda: no CUDA device is visible to PyTorch')
    statuses = {config: check_one(config, args) for config in args.configs}
    for config, status in statuses.items():
        print(f'[check] {status:<30} {config}', file=sys.stderr if not status.startswith('ok') else sys.stdout)
    return 0 if all(status.startswith('ok') for status in statuses.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
