# CIFAR-100 data and the KD-Zero CIFAR recipe (METHODS.md 2.7): 240 epochs, SGD lr 0.1 x0.1 at epochs 100 and 150
# [P] (K8: differs from the usual CRD 150/180/210), batch 64 / weight decay 5e-4 / momentum 0.9 [R] (CRD protocol).
dataset_type = 'CIFAR100'
num_classes = 100
cifar_preprocessor = dict(type='ClsDataPreprocessor', num_classes=100, mean=[129.304, 124.070, 112.434],
                          std=[68.170, 65.392, 70.418], to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64, num_workers=4,
    dataset=dict(type=dataset_type, data_root='data/cifar100', split='train', pipeline=train_pipeline,
                 _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128, num_workers=4,
    dataset=dict(type=dataset_type, data_root='data/cifar100', split='test', pipeline=test_pipeline,
                 _scope_='mmpretrain'),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5), _scope_='mmpretrain')
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150], gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=5)
val_cfg = dict()
test_cfg = dict()
