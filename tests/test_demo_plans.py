"""The demo's row plans, the ones tools/demo.py trains: equal budgets, and nothing chosen on the validation split."""
import importlib
import os
import os.path as osp

import torch
from mmengine.config import Config

from mmkd_ext.amd.demo import demo_config
from mmkd_ext.demo_runner import ROOMS, DemoContext, core_plans
from mmkd_ext.kd_zero.demo import SEARCH_CONFIG, search
from mmkd_ext.registry import MODELS

CTX = DemoContext('work_dirs/demo', 'work_dirs/demo/teacher/epoch_30.pth', 97.0, [0, 1, 2, 3, 4])
SAME_BUDGET = ('student', 'kd', 'kd_t1', 'fkd', 'vrm', 'kd_zero', 'acmkd')


def all_plans(ctx):
    plans = core_plans(ctx)
    for room in ROOMS:
        plans += importlib.import_module(f'mmkd_ext.{room}.demo').plans(ctx)
    return plans


def test_rows_that_differ_only_by_the_method_train_the_same_steps_on_the_same_images(digits_root):
    budgets = {plan.key: plan.budget() for plan in all_plans(CTX)}
    assert set(budgets) == set(SAME_BUDGET) | {'amd'}
    # 30 epochs x ceil(300 images / batch 32) = 30 x 10 steps; FKD: m = 1 crop per image, 32 images per step
    assert {k: (budgets[k]['steps'], budgets[k]['images']) for k in SAME_BUDGET} == {k: (300, 300) for k in SAME_BUDGET}
    # AMD's student is another network (the teacher pruned to 30 %, initialised from it): its two stages are stated,
    # final 4 epochs x 10 steps, joint 4 epochs x ceil(270 / 32) = 9 steps on the images left after the held-out tenth
    assert (budgets['amd']['steps'], budgets['amd']['extra_steps']) == (40, 'joint: 36 (3 candidates)')


def test_no_row_chooses_anything_on_the_validation_split(digits_root):
    for plan in all_plans(CTX):
        cfg = plan.cfg()
        # validated once, after the last epoch: no epoch, checkpoint or 'best' model is picked on val
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs, plan.key
        assert cfg.default_hooks.checkpoint.get('save_best') is None, plan.key
        for hook in cfg.get('custom_hooks', []):
            if hook['type'] == 'ACMKDHook':  # the weakest student on training accuracy; no best_<student>.pth on val
                assert (hook['rank_by'], hook['save_best']) == ('train', False)
    amd = demo_config(CTX, 0)
    assert (amd.amd.selection.split, amd.default_hooks.checkpoint.save_best) == ('held_out', None)
    proxy = Config.fromfile(SEARCH_CONFIG).proxy
    assert proxy.held_out_every == 5 and proxy.get('fitness_dataloader') is None


def test_kd_zero_search_of_the_demo_reads_no_validation_image(tmp_path, digits_root, monkeypatch):
    """Run the demo's genome search where the validation split does not exist: building or reading it fails."""
    base = Config.fromfile(Config.fromfile(SEARCH_CONFIG).base_config)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': MODELS.build(base.model.teacher).state_dict()}, ckpt)
    os.makedirs(tmp_path / 'data' / 'demo' / 'digits')
    os.symlink(osp.join(digits_root, 'train'), tmp_path / 'data' / 'demo' / 'digits' / 'train')
    monkeypatch.chdir(tmp_path)  # the configs read the relative data/demo/digits: here it has no val/
    out = search(DemoContext(str(tmp_path / 'work'), ckpt, 10.0, [0], quick=True))
    assert out['best'] is not None and out['savings']['candidates'] >= 2
