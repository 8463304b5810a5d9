"""Run the whole AMD chain of a config: importance -> joint optimisation -> selection -> final -> export.

    python tools/amd/run.py CONFIG [--work-dir DIR] [--until STAGE] [--amp] [--cfg-options k=v ...]

Every stage is recorded in ``WORK_DIR/amd_state.json`` when it finishes; run the same command again after
a kill and it continues from the unfinished stage (training stages resume from their last checkpoint).

``--cfg-options train_cfg.KEY=VALUE`` applies to every training stage: it is also written into
``amd.joint_train_cfg`` and ``amd.final_train_cfg`` (which the stages merge over ``train_cfg``). To change one
stage only, override ``amd.joint_train_cfg.KEY`` or ``amd.final_train_cfg.KEY``.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmkd_ext  # noqa: E402,F401  (compat layer + registration)
from mmkd_ext.amd.pipeline import AMDPipeline  # noqa: E402
from mmkd_ext.launch import add_common_args, enable_amp, exit_after_tool, load_config, select_device  # noqa: E402
from mmkd_ext.weight_sources import check_weights_available  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='AMD: automatic multi-step distillation')
    parser.add_argument('config', help='AMD config (model.type=AMDDistill plus an amd=dict(...))')
    parser.add_argument('--until', help='stop after this stage (importance, joint_1, select_1, ..., final, export)')
    parser.add_argument('--threads', type=int, help='torch intra-op threads (1 is much faster on a busy small CPU)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision in the training stages (GPU)')
    add_common_args(parser)
    return parser.parse_args(argv)


STAGE_TRAIN_CFGS = ('joint_train_cfg', 'final_train_cfg')


def apply_train_cfg_to_every_stage(cfg, options) -> list:
    """Copy ``train_cfg.*`` overrides into each stage's ``amd.<stage>_train_cfg`` (which would win otherwise).

    Args:
        cfg: the AMD config, options already merged (changed in place).
        options: the ``--cfg-options`` dict, or None.

    Returns:
        The ``amd.*`` keys written.
    """
    written = []
    for key, value in (options or {}).items():
        if not key.startswith('train_cfg.'):
            continue
        for stage in STAGE_TRAIN_CFGS:
            written.append(f'amd.{stage}.{key[len("train_cfg."):]}')
            cfg.merge_from_dict({written[-1]: value})
    if written:
        print(f'[amd] train_cfg overrides apply to every training stage: {written}')
    return written


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    apply_train_cfg_to_every_stage(cfg, args.cfg_options)
    check_weights_available(cfg)
    select_device()  # cuda:LOCAL_RANK as CUDA's current device; the importance stage moves its teacher there
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
    exit_after_tool()  # a clean exit of every rank (process group closed, no interpreter finalization under torchrun)
