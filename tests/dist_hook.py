"""A test-only hook that records which images each rank trains on (used by tests/test_distributed.py)."""
import os
import os.path as osp

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordImagePathsHook(Hook):
    """Append the image paths of every training batch to ``<out_dir>/rank<RANK>.txt``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        with open(osp.join(self.out_dir, f"rank{os.environ.get('RANK', '0')}.txt"), 'a') as f:
            for sample in data_batch['data_samples']:
                f.write(sample.img_path + '\n')
