"""The fake-CUDA device check of one batch of a config (mmkd_ext/device_check): no GPU needed.

    python tools/misc/fake_cuda_check.py CONFIG [--batch-size 2] [--cfg-options k=v ...]

Builds the config's model (give ``model.teacher_ckpt=None`` where the teacher checkpoint is not there) and one batch
of its training data, runs the training step's forward up to the losses with fake CUDA parameters, buffers and
inputs, and prints what was checked. Exits 1 on a device error, naming the module and the line.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

import mmkd_ext  # noqa: E402,F401
from mmkd_ext.device_check import FakeCudaDeviceError, fake_cuda_train_step  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fake-CUDA device check of one training batch of a config')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmkd_ext.registry import MODELS
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmrazor'))
    model = MODELS.build(cfg.model)
    model.train()  # (MMRazor's distillers' train() returns None)
    loader = dict(cfg.train_dataloader, batch_size=args.batch_size, num_workers=0, persistent_workers=False)
    batch = next(iter(Runner.build_dataloader(loader)))
    try:
        report = fake_cuda_train_step(model, batch)
    except FakeCudaDeviceError as err:
        print(f'FAILED: {err}')
        return 1
    print(f'{args.config}: {report.summary()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
