"""Shared command-line plumbing of ``tools/*.py``: config loading, AMP, launcher set-up."""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
from typing import Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from .compat.distributed import prepare_distributed


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local_rank`` as in OpenMMLab tools."""
    parser.add_argument('--work-dir', help='the directory for logs and checkpoints')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher (pytorch: torchrun / tools/dist_train.sh)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(config: str, args: argparse.Namespace, default_work_root: str = './work_dirs') -> Config:
    """Load ``config`` and apply ``--cfg-options``, ``--work-dir`` and ``--launcher``.

    Args:
        config: path of a Python config file.
        args: parsed command line with the arguments of :func:`add_common_args`.
        default_work_root: where ``work_dir`` goes when neither the CLI nor the config sets it.

    Returns:
        The config, ready for ``Runner.from_cfg``.
    """
    if '::' not in config and not osp.isfile(config):  # 'mmkd_ext::kd/...' is resolved by Config.fromfile
        raise FileNotFoundError(f'config file {config!r} does not exist')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(default_work_root, osp.splitext(osp.basename(config))[0])
    cfg.launcher = args.launcher
    prepare_distributed(cfg, args.launcher)
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch every ``OptimWrapper`` of ``cfg.optim_wrapper`` to ``AmpOptimWrapper`` (dynamic scale)."""
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a GPU: MMEngine\'s AmpOptimWrapper runs on CUDA/NPU/MLU devices only')
    wrappers = [cfg.optim_wrapper]
    if cfg.optim_wrapper.get('constructor') or 'optimizer' not in cfg.optim_wrapper:
        # one wrapper per sub-model (e.g. OptimWrapperDict for several students)
        wrappers = [v for k, v in cfg.optim_wrapper.items() if isinstance(v, dict) and 'optimizer' in v]
    for wrapper in wrappers:
        kind = wrapper.get('type', 'OptimWrapper')
        if kind == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.', logger='current', level=logging.WARNING)
        elif kind != 'OptimWrapper':
            raise ValueError(f'--amp works with OptimWrapper, but the config uses {kind}')
        else:
            wrapper['type'] = 'AmpOptimWrapper'
            wrapper['loss_scale'] = 'dynamic'


def parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` with ``parser`` (split out so tools are testable in-process)."""
    return parser.parse_args(argv)
