# FKD on the digits demo: the resnet8 student trains teacher-free on the stored soft labels of
# labels_resnet20_m30-ms5_digits.py (generate them first). 16 images x 2 crops = 32 crops per step;
# max_epochs counts crop-epochs (30, like the plain 30-epoch baseline): 15 passes, serrated cosine.
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
store_dir = 'work_dirs/fkd_labels/digits_resnet20_m30_ms5'
crops_per_image = 2  # m
model = dict(_scope_='mmrazor', type='FKDDistill', architecture={{_base_.digits_student}})
train_dataloader = dict(
    _delete_=True,
    batch_size=32 // crops_per_image,  # images per step; the step sees batch_size * m crops
    num_workers=0,
    collate_fn=dict(type='fkd_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='FKDDataset', _scope_='mmpretrain', store_dir=store_dir, crops_per_image=crops_per_image,
        input_size=32, flip_prob=0.0,  # the store must be labels_resnet20_m30-ms5_digits.py's (checked)
        dataset=dict(type='CustomDataset', data_root='data/demo/digits', data_prefix='train',
                     pipeline=[dict(type='LoadImageFromFile')]),
        pipeline=[dict(type='FKDReplayCrop', scale=32, interpolation='bilinear'), dict(type='PackInputs')]))
train_cfg = dict(_delete_=True, type='FKDEpochBasedTrainLoop', max_epochs=30, val_interval=10)
