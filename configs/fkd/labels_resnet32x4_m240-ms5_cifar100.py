# FKD label generation on CIFAR-100 (not in the paper; [R] our adaptation): teacher resnet32x4, M=240 crops per image
# (= the 240 crop-epochs of training, the paper's "ideal" non-overlapping setting), 32 px, marginal smoothing top-5 fp16
# (24 bytes per crop, 288 MB for 50k images). Crop scale (0.35, 1): 32x32 images lose the object below ~1/3 of the area.
#   python tools/fkd/generate_labels.py configs/fkd/labels_resnet32x4_m240-ms5_cifar100.py
_base_ = ['../_base_/models/cifar100_classifiers.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
teachers = [dict(model={{_base_.resnet32x4}}, checkpoint='checkpoints/crd/resnet32x4_cifar100_converted.pth')]
label_dataset = dict(type='CIFAR100', data_root='data/cifar100', split='train', pipeline=[], _scope_='mmpretrain')
fkd_generation = dict(
    store_dir='data/fkd_labels/cifar100_resnet32x4_m240_ms5',
    num_crops=240, scale=(0.35, 1.0), ratio=(3. / 4., 4. / 3.), flip_prob=0.5, input_size=32,
    interpolation='bilinear', temperature=1.0, strategy='marginal_smoothing', k=5, value_dtype='float16',
    coord_dtype='float16', images_per_batch=8, shard_size=10000, seed=0, num_workers=4,
    amp='none', channels_last=False)  # [R] teacher autocast 'bf16'/'fp16' (GPU) and NHWC; see --compare-fp32
