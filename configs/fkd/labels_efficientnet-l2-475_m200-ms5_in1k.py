# FKD label generation on ImageNet-1k (paper Sec. 3.2, Table 2): teacher EfficientNet-L2-ns-475 ([P]), M=200 random-
# resized crops per image ([P] Table 2 example; [X] official default 500), 475 px bicubic teacher crops ([X]), flip 0.5,
# softmax at temperature 1 ([X]), marginal smoothing top-5 in fp16 ([X] default): 29 bytes per crop, ~7 GB in all.
#   bash tools/fkd/dist_generate_labels.sh configs/fkd/labels_efficientnet-l2-475_m200-ms5_in1k.py 8
# Teacher: mmpretrain's efficientnet-l2_3rdparty-ra-noisystudent_in1k-475px checkpoint (download it yourself).
# Any mmpretrain classifier works; list several under `teachers` to average their probabilities (e.g. MEAL V2's
# SENet154 + ResNet152 ensemble).
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
_imagenet_preprocessor = dict(type='ClsDataPreprocessor', num_classes=1000, mean=[123.675, 116.28, 103.53],
                              std=[58.395, 57.12, 57.375], to_rgb=True)
teachers = [
    dict(model=dict(type='ImageClassifier', data_preprocessor=_imagenet_preprocessor,
                    backbone=dict(type='EfficientNet', arch='l2'), neck=dict(type='GlobalAveragePooling'),
                    head=dict(type='LinearClsHead', num_classes=1000, in_channels=5504)),
         checkpoint='checkpoints/efficientnet-l2_3rdparty-ra-noisystudent_in1k-475px_20221103-5a0d8058.pth')
]
label_dataset = dict(type='ImageNet', data_root='data/imagenet', split='train',
                     pipeline=[dict(type='LoadImageFromFile')])
fkd_generation = dict(
    store_dir='data/fkd_labels/in1k_efficientnet-l2-475_m200_ms5',
    num_crops=200,
    scale=(0.08, 0.936),  # [X] official; (0.08, 1.0) for torchvision parity
    ratio=(3. / 4., 4. / 3.),
    flip_prob=0.5,
    input_size=475,
    interpolation='bicubic',
    temperature=1.0,
    strategy='marginal_smoothing',
    k=5,
    value_dtype='float16',
    coord_dtype='float16',
    images_per_batch=1,
    crops_per_forward=50,  # 50 crops of 475 px per teacher forward on one GPU
    shard_size=10000,
    seed=0,
    num_workers=8,
    amp='none',  # [R] teacher autocast: 'bf16' (CPU/GPU) or 'fp16' (GPU); check with --compare-fp32 N
    channels_last=False)  # [R] NHWC teacher forward
