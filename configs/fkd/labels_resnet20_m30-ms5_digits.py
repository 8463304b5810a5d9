# FKD label generation for the digits demo: the resnet20 teacher labels M=30 random-resized crops of each
# of the 300 training images (M = #crop-epochs, the paper's "ideal" setting), marginal smoothing top-5, fp16.
#   python tools/fkd/generate_labels.py configs/fkd/labels_resnet20_m30-ms5_digits.py
#   bash tools/fkd/dist_generate_labels.sh configs/fkd/labels_resnet20_m30-ms5_digits.py 2
# Teacher checkpoint: python tools/train.py configs/kd/resnet20_1xb32-30e_digits.py --work-dir work_dirs/digits_teacher
_base_ = ['../_base_/models/digits_classifiers.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)

teachers = [dict(model={{_base_.digits_teacher}}, checkpoint='work_dirs/digits_teacher/epoch_30.pth')]
# the training images, in the order training reads them; the pipeline only loads (crops are FKD's)
label_dataset = dict(type='CustomDataset', data_root='data/demo/digits', data_prefix='train',
                     pipeline=[dict(type='LoadImageFromFile')], _scope_='mmpretrain')
fkd_generation = dict(
    store_dir='work_dirs/fkd_labels/digits_resnet20_m30_ms5',
    num_crops=30,
    scale=(0.5, 1.0),  # [R] 32x32 digits: measured 96.4/96.6 top-1 vs 94.2/95.4 with (0.25, 1) (README)
    ratio=(3. / 4., 4. / 3.),
    flip_prob=0.0,  # digits are not mirror-symmetric (the ImageNet configs use 0.5)
    input_size=32,
    interpolation='bilinear',
    temperature=1.0,
    strategy='marginal_smoothing',
    k=5,
    value_dtype='float16',
    coord_dtype='float16',
    images_per_batch=20,
    shard_size=100,
    seed=0,
    num_workers=0,
    amp='none',  # [R] teacher autocast: 'bf16' (CPU/GPU) or 'fp16' (GPU); check with --compare-fp32 N
    channels_last=False)  # [R] NHWC teacher forward
