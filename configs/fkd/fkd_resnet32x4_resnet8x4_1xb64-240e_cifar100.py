# FKD on CIFAR-100 ([R] our adaptation of the paper's ImageNet recipe to the CRD CIFAR setting): resnet8x4 student on
# the stored resnet32x4 labels of labels_resnet32x4_m240-ms5_cifar100.py; 64 crops per step = 16 images x m=4;
# 240 crop-epochs = 60 passes; each pass takes the next 4 crops of every image (non_overlap), so over training every
# stored crop is seen exactly once, like online KD. LR x0.1 at crop-epochs 150, 180, 210 (step schedule unchanged).
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py', '../_base_/default_runtime.py'
]
store_dir = 'data/fkd_labels/cifar100_resnet32x4_m240_ms5'
crops_per_image = 4
model = dict(_scope_='mmrazor', type='FKDDistill', architecture={{_base_.resnet8x4}})
train_dataloader = dict(
    _delete_=True,
    batch_size=64 // crops_per_image,
    num_workers=4,
    persistent_workers=False,  # non_overlap sampling reads the pass index in the workers
    collate_fn=dict(type='fkd_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='FKDDataset', _scope_='mmpretrain', store_dir=store_dir, crops_per_image=crops_per_image,
        sampling='non_overlap',
        input_size=32, flip_prob=0.5,  # the store must be labels_resnet32x4_m240-ms5_cifar100.py's (checked)
        dataset=dict(type='CIFAR100', data_root='data/cifar100', split='train', pipeline=[]),
        pipeline=[dict(type='FKDReplayCrop', scale=32, interpolation='bilinear'), dict(type='PackInputs')]))
train_cfg = dict(_delete_=True, type='FKDEpochBasedTrainLoop', max_epochs=240, val_interval=8)
