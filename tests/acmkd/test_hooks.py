"""ACMKDHook: epoch bookkeeping and ranking by running training accuracy, in a real Runner."""
import torch
from mmengine.runner import Runner

from .test_runner import small_cfg


def test_train_ranking_picks_the_student_with_the_lowest_running_accuracy(digits_root, tmp_path):
    cfg = small_cfg(tmp_path, epochs=1)
    cfg.custom_hooks = [dict(type='ACMKDHook', rank_by='train', save_best=False)]
    cfg.val_dataloader.dataset.indices = 10  # rank_by='train' ignores the (final) validation
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    seen = {}
    model = runner.model
    original = model.train_accuracies

    def spy(reset=True):
        seen.update(original(reset=False))
        return original(reset=reset)

    model.train_accuracies = spy
    runner.train()
    expected = min(model.student_names, key=lambda n: (seen[n], model.student_names.index(n)))
    assert model.weakest == expected
    assert model.epoch == 0 and model.ssd_start_epoch == 1
