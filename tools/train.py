"""Train a model or a distillation algorithm from a config (OpenMMLab ``tools/train.py``).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] \
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Multi-process: ``bash tools/dist_train.sh CONFIG N`` (torchrun; CPU uses gloo).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.runner import Runner  # noqa: E402

import mmkd_ext  # noqa: E402,F401  (compat layer + registration, before mmrazor loads)
from mmkd_ext.checks import check_head_classes  # noqa: E402
from mmkd_ext.data_checks import check_dataset_roots  # noqa: E402
from mmkd_ext.launch import add_common_args, check_auto_resume, enable_amp, exit_after_tool, load_config  # noqa: E402
from mmkd_ext.weight_sources import check_weights_available  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a (distillation) model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the latest checkpoint in the work_dir, or from the given checkpoint')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the LR by the total batch size')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise RuntimeError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        check_auto_resume(cfg.work_dir)  # MMEngine would train from scratch, with one INFO line as the only sign
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    check_dataset_roots(cfg)
    check_weights_available(cfg)  # offline: a missing or to-be-downloaded weight is an error before building
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    check_head_classes(model, runner.train_dataloader.dataset)
    runner.train()
    return runner


if __name__ == '__main__':
    main()
    exit_after_tool()  # a clean exit of every rank (process group closed, no interpreter finalization under torchrun)
