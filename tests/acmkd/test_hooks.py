"""ACMKDHook: epoch bookkeeping and ranking by running training accuracy, in a real Runner."""
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmkd_ext.acmkd.ranking import held_out_accuracies
from mmkd_ext.registry import HOOKS, PRETRAIN_DATASETS

from .test_runner import CONFIG, small_cfg


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


@HOOKS.register_module(force=True)
class TrainImagesProbe(Hook):
    """Test probe: the image files the training iterations really load."""
    files = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.files += [s.img_path for s in data_batch['data_samples']]


def test_weakest_student_is_ranked_on_held_out_training_images_never_trained_on(digits_root, tmp_path, monkeypatch):
    cfg = small_cfg(tmp_path, epochs=1)  # 64 digits training images; [R] every 10th is held out
    cfg.custom_hooks = [dict(type='ACMKDHook', save_best=False), dict(type='mmrazor.TrainImagesProbe')]
    cfg.val_dataloader.dataset.indices = 10
    TrainImagesProbe.files = []
    ranked = []

    def spy(model, loader, evaluators, metric):
        accs = held_out_accuracies(model, loader, evaluators, metric)
        inner = loader.dataset.dataset
        ranked.append(({inner.get_data_info(i)['img_path'] for i in loader.dataset.indices}, accs))
        return accs

    monkeypatch.setattr('mmkd_ext.acmkd.hooks.held_out_accuracies', spy)
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    full = PRETRAIN_DATASETS.build(dict(Config.fromfile(CONFIG).train_dataloader.dataset.dataset, indices=64))
    files = [full.get_data_info(i)['img_path'] for i in range(64)]
    held_out = {files[i] for i in range(9, 64, 10)}  # 6 images
    (evaluated, accs), = ranked  # one ranking, after the one epoch
    assert evaluated == held_out
    assert set(TrainImagesProbe.files) == set(files) - held_out  # 58 trained, none of them held out
    assert all(abs(a * 6 / 100 - round(a * 6 / 100)) < 1e-6 for a in accs.values())  # k of 6 images right
    model = runner.model
    assert model.weakest == min(model.student_names, key=lambda n: (accs[n], model.student_names.index(n)))

