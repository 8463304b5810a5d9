"""Run the whole AMD chain of a config: importance -> joint optimisation -> selection -> final -> export.

    python tools/amd/run.py CONFIG [--work-dir DIR] [--until STAGE] [--amp] [--cfg-options k=v ...]

Every stage is recorded in ``WORK_DIR/amd_state.json`` when it finishes; run the same command again after
a kill and it continues from the unfinished stage (training stages resume from their last checkpoint).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmkd_ext  # noqa: E402,F401  (compat layer + registration)
from mmkd_ext.amd.pipeline import AMDPipeline  # noqa: E402
from mmkd_ext.launch import add_common_args, enable_amp, load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='AMD: automatic multi-step distillation')
    parser.add_argument('config', help='AMD config (model.type=AMDDistill plus an amd=dict(...))')
    parser.add_argument('--until', help='stop after this stage (importance, joint_1, select_1, ..., final, export)')
    parser.add_argument('--threads', type=int, help='torch intra-op threads (1 is much faster on a busy small CPU)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision in the training stages (GPU)')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    if args.amp:
        enable_amp(cfg)  # the joint and final stages train with AmpOptimWrapper
    if args.threads:
        torch.set_num_threads(args.threads)
    state = AMDPipeline(cfg, cfg.work_dir).run(until=args.until)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != 'metrics'} for k, v in state.items()},
                     indent=1, default=str))
    return state


if __name__ == '__main__':
    main()
