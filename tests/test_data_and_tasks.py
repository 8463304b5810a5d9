"""The three tasks end to end: demo data read by the real dataset classes, KD configs train and evaluate."""
import os.path as osp
import re

import pytest
from conftest import config_path
from mmengine.config import Config
from mmengine.runner import Runner

from mmkd_ext.data_checks import check_dataset_roots
from mmkd_ext.demo_data import DemoDataMissing

CLS_KD = config_path('kd', 'kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py')
DET_KD = config_path('kd', 'cwd_fpn_retinanet_r18_retinanet_r18-w16_1xb8-12e_shapes.py')
SEG_KD = config_path('kd', 'cwd_logits_pspnet_r18-d8_fcn_r18-w32-d8_1xb4-600it_cityscapes-demo.py')


def test_digits_are_read_by_mmpretrain_custom_dataset(digits_root):
    from mmpretrain.datasets import CustomDataset
    train = CustomDataset(data_root=digits_root, data_prefix='train', pipeline=[])
    val = CustomDataset(data_root=digits_root, data_prefix='val', pipeline=[])
    assert (len(train), len(val)) == (300, 1797 - 300)  # every digit not trained on is validated
    assert train.CLASSES == tuple(str(i) for i in range(10))
    assert sorted(set(train.get_gt_labels().tolist())) == list(range(10))


def test_shapes_are_read_by_mmdet_coco_dataset(shapes_root):
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(data_root=shapes_root, ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
                     metainfo=dict(classes=('circle', 'square', 'triangle')), pipeline=[], test_mode=True)
    assert len(ds) == 40
    info = ds.get_data_info(0)
    assert osp.isfile(info['img_path']) and len(info['instances']) >= 1
    assert {inst['bbox_label'] for i in range(len(ds)) for inst in ds.get_data_info(i)['instances']} == {0, 1, 2}


def test_scenes_are_read_by_mmseg_cityscapes_dataset(cityscapes_root):
    import numpy as np
    from mmseg.datasets import CityscapesDataset
    from PIL import Image
    ds = CityscapesDataset(data_root=cityscapes_root, data_prefix=dict(
        img_path='leftImg8bit/val', seg_map_path='gtFine/val'), pipeline=[])
    assert len(ds) == 20
    label = np.array(Image.open(ds.get_data_info(0)['seg_map_path']))
    assert set(np.unique(label)) <= {0, 1, 2, 8, 10, 11, 13}


def test_missing_dataset_root_names_layout_and_command(tmp_path):
    cfg = Config.fromfile(CLS_KD)
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'demo' / 'digits')
    with pytest.raises(DemoDataMissing) as err:
        check_dataset_roots(cfg)
    msg = str(err.value)
    assert 'ImageFolder' in msg and 'python tools/misc/make_demo_data.py' in msg and str(tmp_path) in msg


def _losses(log_text, key):
    return [float(v) for v in re.findall(rf'{re.escape(key)}: ([0-9.]+)', log_text)]


def build_and_train(config, work_dir, options, sharpen=None):
    """Train ``config`` with a random teacher and only the distillation loss, on fixed data.

    ``sharpen`` names a teacher module whose weights are scaled up so that the random teacher's outputs are peaked
    (a freshly initialised head gives near-uniform logits, which leave nothing to distil).
    """
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    cfg.model.teacher_ckpt = None  # the test is about the pipeline, not about accuracy
    cfg.model.calculate_student_loss = False  # so the distillation loss alone drives the student
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    runner = Runner.from_cfg(cfg)
    teacher = runner.model.teacher
    teacher.init_weights()
    teacher._is_init = True  # keep the weights below through Runner.train()'s init_weights()
    if sharpen:
        teacher.get_submodule(sharpen).weight.data.mul_(30)
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    return runner, log


def test_classification_kd_trains_evaluates_and_the_distill_loss_falls(tmp_path, digits_root):
    # fixed data: no augmentation, no shuffling, one repeated batch; 8 iterations
    runner, log = build_and_train(CLS_KD, tmp_path, {
        'train_dataloader.dataset.pipeline': [dict(type='LoadImageFromFile'), dict(type='PackInputs')],
        'train_dataloader.sampler.shuffle': False, 'train_dataloader.batch_size': 150,
        'train_cfg.max_epochs': 4, 'train_cfg.val_interval': 4}, sharpen='head.fc')
    losses = _losses(log, 'distill.loss_kl')
    assert len(losses) == 8 and losses[-1] < losses[0]
    assert 'accuracy/top1' in log and 'teacher.accuracy/top1' in log


def test_detection_kd_trains_and_evaluates_with_coco_metric(tmp_path, shapes_root):
    fixed = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
             dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='PackDetInputs')]
    runner, log = build_and_train(DET_KD, tmp_path, {
        'train_dataloader.dataset.pipeline': fixed, 'train_dataloader.sampler.shuffle': False,
        'train_dataloader.dataset.indices': 8, 'val_dataloader.dataset.indices': 8,
        'train_cfg.max_epochs': 6, 'train_cfg.val_interval': 6,
        'model.architecture.test_cfg.score_thr': 0.0, 'model.teacher.test_cfg.score_thr': 0.0,  # untrained heads
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=False)]})
    losses = _losses(log, 'distill.loss_cwd_fpn0')
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert 'coco/bbox_mAP' in log


def test_segmentation_kd_trains_and_evaluates_with_iou_metric(tmp_path, cityscapes_root):
    fixed = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
    runner, log = build_and_train(SEG_KD, tmp_path, {
        'train_dataloader.dataset.pipeline': fixed, 'train_dataloader.sampler.shuffle': False,
        'train_dataloader.dataset.indices': 4, 'train_cfg.max_iters': 6, 'train_cfg.val_interval': 6,
        'val_dataloader.dataset.indices': 3,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, by_epoch=False)]}, sharpen='decode_head.conv_seg')
    losses = _losses(log, 'distill.loss_cwd')
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert 'mIoU' in log
