"""Shared helpers of the FKD tests: the demo label config, shrunk."""
import contextlib
import os.path as osp

import torch
from mmengine.config import Config

LABEL_CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'fkd',
                        'labels_resnet20_m30-ms5_digits.py')
N_IMAGES = 12  # images of the digits train set used by the generation tests


def label_config(store_dir, ckpt, n_images=N_IMAGES, **overrides):
    """The demo label config shrunk to ``n_images`` images, M=4 crops, 2-image batches, 4-image shards."""
    cfg = Config.fromfile(LABEL_CONFIG)
    cfg.teachers[0].checkpoint = ckpt
    cfg.label_dataset.indices = n_images
    cfg.fkd_generation.update(dict(store_dir=str(store_dir), num_crops=4, images_per_batch=2, shard_size=4,
                                   flip_prob=0.5), **overrides)
    return cfg


@contextlib.contextmanager
def one_thread():
    """One torch intra-op thread (module/session fixtures run before the function-scoped autouse one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
