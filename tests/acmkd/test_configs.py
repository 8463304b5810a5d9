"""The real-data ACMKD configs carry the paper's recipes (Sec. IV-A; METHODS.md 3.7)."""
import os.path as osp

from mmengine.config import Config

from .helpers import ROOT


def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs', 'acmkd', name))


def test_imagenet_config_has_paper_recipe():
    cfg = load('acmkd_swin-t_3students_4xb32-300e_in1k.py')
    opt = cfg.optim_wrapper.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-3, 0.05)
    assert cfg.train_cfg.max_epochs == 300 and cfg.train_dataloader.batch_size == 32
    assert cfg.model.teacher.backbone.type == 'SwinTransformer'
    assert [s.model.backbone.type for s in cfg.model.students.values()] == ['ResNet', 'RedNet', 'SwinTransformer']
    assert cfg.model.tau == 1.0 and cfg.val_cfg.type == 'ACMKDValLoop'


def test_cifar100_config_has_paper_recipe():
    cfg = load('acmkd_swin-t_3students_1xb64-200e_cifar100.py')
    assert cfg.train_dataloader.batch_size == 64 and cfg.train_cfg.max_epochs == 200
    assert cfg.optim_wrapper.optim_wrapper.optimizer.lr == 0.1
    assert cfg.param_scheduler[0].milestones == [100, 150] and cfg.param_scheduler[0].gamma == 0.1
    assert cfg.model.teacher.head.num_classes == 100
    assert all(s.model.head.num_classes == 100 for s in cfg.model.students.values())
