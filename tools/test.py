"""Evaluate a checkpoint on the config's test set (OpenMMLab ``tools/test.py``).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] \
        [--launcher {none,pytorch,slurm,mpi}] [--out results.pkl]

A distillation checkpoint holds its teacher's weights (keys ``teacher.*``), so the config's
``model.teacher_ckpt`` file is not read (it need not exist). The checkpoint must match the model exactly
(``load_from_strict=False`` allows a partial load, see mmkd_ext/weights.py).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.runner import Runner  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.data_checks import check_dataset_roots  # noqa: E402
from mmkd_ext.launch import add_common_args, exit_after_tool, load_config  # noqa: E402
from mmkd_ext.weights import checkpoint_state_dict  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    add_common_args(parser)
    return parser.parse_args(argv)


def skip_teacher_file(cfg, checkpoint: str) -> bool:
    """Drop ``model.teacher_ckpt`` when ``checkpoint`` already holds the teacher (``teacher.*`` keys).

    Args:
        cfg: the test config (changed in place).
        checkpoint: the checkpoint to evaluate.

    Returns:
        Whether the teacher file was dropped.
    """
    model = cfg.get('model') or {}
    if not model.get('teacher_ckpt'):
        return False
    from mmengine.runner.checkpoint import _load_checkpoint
    if not any(k.startswith('teacher.') for k in checkpoint_state_dict(_load_checkpoint(checkpoint, 'cpu'))):
        return False
    print(f'[test] {checkpoint} holds the teacher\'s weights: model.teacher_ckpt ({model.teacher_ckpt}) is not read')
    model.teacher_ckpt = None
    return True


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args)
    cfg.load_from = args.checkpoint
    skip_teacher_file(cfg, args.checkpoint)
    if args.out:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(cfg.test_evaluator, list) else [
            cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    check_dataset_roots(cfg, ('test_dataloader',))
    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
    exit_after_tool()  # a clean exit of every rank (process group closed, no interpreter finalization under torchrun)
