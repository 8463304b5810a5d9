# Built-in demo classification data: scikit-learn's handwritten digits, 32x32 RGB, ImageFolder layout,
# 300 training / 500 validation images (make it with: python tools/misc/make_demo_data.py --tasks cls).
dataset_type = 'CustomDataset'
data_root = 'data/demo/digits'
num_classes = 10
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=3),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', pipeline=train_pipeline,
                 _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=100, num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', pipeline=test_pipeline,
                 _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ), _scope_='mmpretrain')
test_dataloader = val_dataloader
test_evaluator = val_evaluator
