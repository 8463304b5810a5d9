"""Evaluate a checkpoint on the config's test set (OpenMMLab ``tools/test.py``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] \
        [--launcher {none,pytorch}] [--out results.pkl]
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.runner import Runner  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.data_checks import check_dataset_roots  # noqa: E402
from mmkd_ext.launch import add_common_args, load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(cfg.test_evaluator, list) else [
            cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    check_dataset_roots(cfg, ('test_dataloader',))
    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
