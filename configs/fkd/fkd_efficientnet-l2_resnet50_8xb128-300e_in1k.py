# FKD ResNet-50 from scratch on ImageNet-1k, paper Table 12 (= ReLabel recipe): 300 epochs, 1024 crops per step
# (8 GPUs x 32 images x m=4 crops), SGD lr 0.1, momentum 0.9 ([X]), wd 1e-4, cosine, 5 warm-up epochs, random crop,
# flip and colour jitter; soft CE on the stored labels of labels_efficientnet-l2-475_m200-ms5_in1k.py.
# Paper: 80.1% top-1 (79.8% without warm-up and colour jitter). Epochs count crop-epochs (FKDEpochBasedTrainLoop):
# 75 passes over the data; the cosine is evaluated once per pass at the crop-epoch index (the paper's serrated LR),
# the warm-up per iteration over the first 5 crop-epochs.
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py', '../_base_/default_runtime.py']
store_dir = 'data/fkd_labels/in1k_efficientnet-l2-475_m200_ms5'
crops_per_image = 4  # m ([P] Table 12)
# the base's top-level data_preprocessor has no type (mmpretrain's ImageClassifier fills it in); the Runner would hand
# it to the algorithm, which uses the student's ClsDataPreprocessor when given none
data_preprocessor = None
model = dict(
    _scope_='mmrazor',
    type='FKDDistill',
    architecture=dict(
        _scope_='mmpretrain', type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=1000, mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], to_rgb=True),
        backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ), style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048, topk=(1, 5),
                  loss=dict(type='CrossEntropyLoss', use_soft=True))))
train_dataloader = dict(
    _delete_=True,
    batch_size=32,  # images per GPU; x m = 128 crops per GPU, 1024 on 8 GPUs
    num_workers=8,
    persistent_workers=True,
    collate_fn=dict(type='fkd_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='FKDDataset', _scope_='mmpretrain', store_dir=store_dir, crops_per_image=crops_per_image,
        verify='quick',  # sizes + headers; 'full' also checks every shard's sha256 (~10 s per GB)
        flip_prob=0.5,  # as the labels (checked); input_size not: the teacher saw 475 px crops, the student 224
        dataset=dict(type='ImageNet', data_root='data/imagenet', split='train',
                     pipeline=[dict(type='LoadImageFromFile')]),
        pipeline=[
            dict(type='FKDReplayCrop', scale=224, interpolation='bilinear'),  # [X] student crops: 224 px bilinear
            dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),  # [P] after the crop
            dict(type='PackInputs'),
        ]))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=False))
param_scheduler = [
    # warm-up per iteration over the first 5 crop-epochs (FKDEpochBasedTrainLoop converts by crop-epoch: 1.25 passes)
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=295, by_epoch=True, begin=5, end=300, eta_min=0.0),
]
train_cfg = dict(type='FKDEpochBasedTrainLoop', max_epochs=300, val_interval=4)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)  # images per step (x m = 1024 crops)
