"""Teacher-free FKD training (mmkd_ext/fkd/{datasets,algorithm,loops,stored_teacher}.py) with the real Runner."""
import math
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmkd_ext.fkd import LabelStore, LabelStoreError, fkd_collate, fkd_loss
from mmkd_ext.fkd.generation import generate_labels
from mmkd_ext.fkd.loops import convert_by_crop_epoch
from mmkd_ext.fkd.stored_teacher import stored_logits
from mmkd_ext.registry import PRETRAIN_DATASETS

from .fkd_helpers import label_config, one_thread

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FKD_CONFIG = osp.join(ROOT, 'configs/fkd/fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py')
STORED_KL_CONFIG = osp.join(ROOT, 'configs/fkd/fkd-kl_stored-resnet20_resnet8x0.5_1xb32-30e_digits.py')
N = 16  # training images


@pytest.fixture(scope='module')
def store(tmp_path_factory, teacher_ckpt):
    root = tmp_path_factory.mktemp('train') / 'store'
    with one_thread():
        generate_labels(label_config(root, teacher_ckpt, n_images=N, shard_size=8), progress=False,
                        log=lambda *_: None)
    return str(root)


def dataset_cfg(store, **kw):
    cfg = Config.fromfile(FKD_CONFIG).train_dataloader.dataset.to_dict()
    cfg['dataset']['indices'] = N
    cfg.update(store_dir=store, flip_prob=0.5, **kw)  # the test store has flips (fkd_helpers.label_config)
    return cfg


def train_cfg(config, store, work_dir, max_epochs=4):
    cfg = Config.fromfile(config)
    cfg.train_dataloader.dataset.store_dir = store
    cfg.train_dataloader.dataset.flip_prob = 0.5  # the test store has flips (fkd_helpers.label_config)
    cfg.train_dataloader.dataset.dataset.indices = N
    cfg.train_dataloader.batch_size = 4  # 4 images x 2 crops: 4 iterations per pass
    cfg.val_dataloader.dataset.indices = 20
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_epochs = max_epochs
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, eta_min=0.0)]
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.logger.interval = 1
    cfg.log_level = 'WARNING'
    return cfg


def test_store_made_at_another_size_or_flip_probability_is_refused_naming_both(store):
    with pytest.raises(LabelStoreError, match=rf"{store}.*input_size: the store was generated at \[32, 32\], the "
                                              r"training expects \[16, 16\]"):
        PRETRAIN_DATASETS.build(dataset_cfg(store, input_size=16))
    digits = Config.fromfile(FKD_CONFIG).train_dataloader.dataset.to_dict()  # expects flip_prob=0.0
    digits['dataset']['indices'] = N
    with pytest.raises(LabelStoreError, match=rf"{store}.*flip_prob: the store was generated with 0.5, the "
                                              r"training expects 0.0"):
        PRETRAIN_DATASETS.build(dict(digits, store_dir=store))
    assert len(PRETRAIN_DATASETS.build(dataset_cfg(store, input_size=(32, 32)))) == N  # matching settings pass


def test_item_is_m_crops_of_one_image_with_their_stored_labels(store):
    ds = PRETRAIN_DATASETS.build(dataset_cfg(store))
    np.random.seed(0)
    samples = ds[5]
    assert len(samples) == 2
    stored = LabelStore(store).soft_labels(5, range(4))  # all M=4 crops of image 5
    for s in samples:
        assert s['inputs'].shape == (3, 32, 32)
        assert int(s['data_samples'].gt_label) == int(ds.dataset[5]['gt_label'])
        assert any(torch.allclose(s['data_samples'].gt_score, row) for row in stored)
    assert not torch.equal(samples[0]['data_samples'].gt_score, samples[1]['data_samples'].gt_score)


def test_collate_puts_m_crops_per_image_in_one_batch(store):
    ds = PRETRAIN_DATASETS.build(dataset_cfg(store))
    batch = fkd_collate([ds[0], ds[1], ds[2]])
    assert len(batch['inputs']) == 6
    assert [d.img_path for d in batch['data_samples']][:2] == [ds.dataset[0]['img_path']] * 2


def test_non_overlap_sampling_uses_every_crop_before_repeating(store):
    ds = PRETRAIN_DATASETS.build(dataset_cfg(store, sampling='non_overlap'))
    seen = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        seen += ds.crop_ids(3).tolist()
    assert sorted(seen) == [0, 1, 2, 3]


def test_store_of_another_dataset_is_refused(store):
    cfg = dataset_cfg(store)
    cfg['dataset']['indices'] = N - 1
    with pytest.raises(LabelStoreError, match='another dataset: the number of images differs'):
        PRETRAIN_DATASETS.build(cfg)


def test_store_of_another_teacher_is_refused(store, tmp_path):
    other = tmp_path / 'other.pth'
    other.write_bytes(b'not the teacher')
    with pytest.raises(LabelStoreError, match='another teacher'):
        PRETRAIN_DATASETS.build(dataset_cfg(store, teacher_checkpoints=[str(other)]))


def test_fkd_loss_is_soft_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, 0.0]])
    target = torch.tensor([[0.25, 0.75]])
    assert torch.isclose(fkd_loss(logits, target), torch.tensor(np.log(2.0), dtype=torch.float32))


def test_stored_logits_give_back_the_stored_distribution():
    p = torch.tensor([[0.7, 0.2, 0.1, 0.0]])
    assert torch.allclose(torch.softmax(stored_logits(p), 1), p, atol=1e-7)


def test_fkd_config_trains_teacher_free_with_a_serrated_schedule(store, tmp_path):
    runner = Runner.from_cfg(train_cfg(FKD_CONFIG, store, tmp_path))
    assert not hasattr(runner.model, 'teacher')
    runner.train()
    assert runner.train_loop.passes == 2 and runner.iter == 8 and runner.epoch == 4
    lrs = runner.message_hub.get_scalar('train/lr').data[0].tolist()
    # cosine over 4 crop-epochs evaluated once per pass at crop-epochs 0 and 2: 0.05, then 0.025
    assert np.allclose(lrs, [0.05] * 4 + [0.025] * 4)
    assert osp.isfile(tmp_path / 'epoch_4.pth') and osp.isfile(tmp_path / 'epoch_2.pth')
    losses = runner.message_hub.get_scalar('train/loss_fkd').data[0]
    assert np.isfinite(losses).all()


def test_max_epochs_must_be_a_multiple_of_crops_per_image(store, tmp_path):
    runner = Runner.from_cfg(train_cfg(FKD_CONFIG, store, tmp_path, max_epochs=3))
    with pytest.raises(ValueError, match='multiple of crops_per_image'):
        runner.train()


def test_stored_teacher_feeds_mmrazor_kl_distiller(store, tmp_path):
    runner = Runner.from_cfg(train_cfg(STORED_KL_CONFIG, store, tmp_path, max_epochs=2))
    assert type(runner.model.teacher).__name__ == 'StoredTeacher'
    runner.train()
    hub = runner.message_hub
    assert np.isfinite(hub.get_scalar('train/distill.loss_kl').data[0]).all()
    assert np.isfinite(hub.get_scalar('train/student.loss').data[0]).all()


def test_cutmix_mixes_stored_soft_labels_with_the_images(store):
    cfg = Config.fromfile(FKD_CONFIG)
    cfg.model.architecture.data_preprocessor.batch_augments = dict(augments=[dict(type='CutMix', alpha=1.0)])
    from mmengine.registry import init_default_scope

    from mmkd_ext.registry import MODELS
    init_default_scope('mmrazor')
    model = MODELS.build(cfg.model.to_dict())
    ds = PRETRAIN_DATASETS.build(dataset_cfg(store))
    batch = fkd_collate([ds[i] for i in range(4)])
    before = torch.stack([d.gt_score for d in batch['data_samples']]).clone()
    torch.manual_seed(0)
    out = model.data_preprocessor(batch, training=True)
    after = torch.stack([d.gt_score for d in out['data_samples']])
    assert torch.allclose(after.sum(1), torch.ones(8), atol=1e-5)
    # each mixed target is lam * own + (1 - lam) * another crop's stored label, the same lam for the whole batch
    lam = None
    for i in range(8):
        for j in range(8):
            diff = before[i] - before[j]
            if i != j and diff.abs().sum() > 1e-3:
                cand = ((after[i] - before[j]) @ diff / (diff @ diff)).item()
                if torch.allclose(cand * before[i] + (1 - cand) * before[j], after[i], atol=1e-5):
                    lam = cand if lam is None else lam
                    break
    assert lam is not None and 0.0 < lam < 1.0


def test_student_with_another_number_of_classes_is_refused(store):
    from mmengine.registry import init_default_scope

    from mmkd_ext.registry import MODELS
    cfg = Config.fromfile(FKD_CONFIG)
    cfg.model.architecture.head.num_classes = 7  # the store holds 10-class labels
    init_default_scope('mmrazor')
    model = MODELS.build(cfg.model.to_dict())
    ds = PRETRAIN_DATASETS.build(dataset_cfg(store))
    data = model.data_preprocessor(fkd_collate([ds[0]]), training=True)
    with pytest.raises(ValueError, match='student has 7 classes and teacher 10'):
        model.loss(data['inputs'], data['data_samples'])


def test_more_crops_per_image_than_stored_is_refused(store):
    with pytest.raises(ValueError, match=r'crops_per_image must be in \[1, M=4\]'):
        PRETRAIN_DATASETS.build(dataset_cfg(store, crops_per_image=5))


def test_resume_continues_at_the_crop_epoch_of_the_checkpoint(store, tmp_path):
    runner = Runner.from_cfg(train_cfg(FKD_CONFIG, store, tmp_path))
    runner.train()  # 2 passes: epoch_2.pth, epoch_4.pth
    first_pass = os.stat(tmp_path / 'epoch_2.pth').st_mtime_ns
    second_pass = os.stat(tmp_path / 'epoch_4.pth').st_mtime_ns
    cfg = train_cfg(FKD_CONFIG, store, tmp_path)
    cfg.resume, cfg.load_from = True, str(tmp_path / 'epoch_2.pth')
    cfg.experiment_name = 'resumed'
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.iter == 8 and resumed.epoch == 4
    assert os.stat(tmp_path / 'epoch_2.pth').st_mtime_ns == first_pass  # pass 1 not trained again
    assert os.stat(tmp_path / 'epoch_4.pth').st_mtime_ns != second_pass  # pass 2 trained again
    # the LR history comes back with the checkpoint (pass 1) and only pass 2 runs, at the LR of crop-epoch 2
    assert np.allclose(resumed.message_hub.get_scalar('train/lr').data[0].tolist(), [0.05] * 4 + [0.025] * 4)


@pytest.mark.parametrize('config, base_lr, start, eta_min', [
    ('fkd_efficientnet-l2_resnet50_8xb128-300e_in1k.py', 0.1, 0.01, 0.0),
    ('fkd_efficientnet-l2_vit-tiny_8xb128-300e_in1k.py', 0.002, 1e-3, 1e-5)])
def test_imagenet_warm_up_is_per_iteration_over_the_first_5_crop_epochs(store, tmp_path, config, base_lr, start,
                                                                        eta_min):
    """The ImageNet configs' schedule on 16 images x m=4 crops, 4 images per step: 1 iteration per crop-epoch."""
    imagenet = Config.fromfile(osp.join(ROOT, 'configs/fkd', config))
    cfg = train_cfg(FKD_CONFIG, store, tmp_path, max_epochs=12)  # 3 passes of 4 iterations
    cfg.train_dataloader.dataset.crops_per_image = 4
    cfg.train_dataloader.batch_size = 4
    cfg.optim_wrapper = imagenet.optim_wrapper
    cfg.param_scheduler = imagenet.param_scheduler
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6, save_last=False)
    runner = Runner.from_cfg(cfg)
    runner.train()
    lrs = runner.message_hub.get_scalar('train/lr').data[0].tolist()
    # LinearLR(end=5 crop-epochs = 5 iterations): MMEngine reaches the end factor 1 at its last step, iteration 4
    warm_up = [base_lr * (start + (1 - start) * i / 4) for i in range(5)]
    # crop-epochs 5-7 (rest of pass 2) at the base lr; the cosine (begin 5, T_max 295) is evaluated once per pass
    # at the crop-epoch index: after pass 2 it stands at crop-epoch 8, 3 steps past its begin
    cosine = eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * 3 / 295)) / 2
    assert np.allclose(lrs, warm_up + [base_lr] * 3 + [cosine] * 4, rtol=1e-6, atol=0)


def test_converted_step_schedule_with_fractional_crop_epochs_is_refused():
    step = [dict(type='MultiStepLR', milestones=[2], by_epoch=True, convert_to_iter_based=True)]
    with pytest.raises(ValueError, match='not a whole number'):
        convert_by_crop_epoch(step, 2.5)
    assert convert_by_crop_epoch(step, 3)[0]['epoch_length'] == 3 and 'epoch_length' not in step[0]
