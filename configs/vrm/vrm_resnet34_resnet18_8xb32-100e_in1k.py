# VRM on ImageNet-1k, ResNet-34 -> ResNet-18 (paper Table 2: teacher 73.31, student 69.75, VRM 72.93 top-1).
# mmpretrain's 100-epoch recipe = [R] METHODS.md 5.8: batch 256 (8 x 32), SGD lr 0.1, x0.1 at 30/60/90, wd 1e-4.
# Teacher: the paper's, torchvision's ResNet-34 (73.31), converted once by
#   python tools/model_converters/torchvision_to_mmpretrain.py resnet34-b627a593.pth \
#       checkpoints/torchvision/resnet34_in1k_converted.pth --arch resnet34 --verify
# (mmpretrain's resnet34_8xb32_in1k checkpoint, 73.62, loads as is: set teacher_ckpt to it).
# (mmpretrain's config brings its own runtime, so ../_base_/default_runtime.py is not added: duplicate keys)
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
num_classes = 1000
bgr_mean = [103.53, 116.28, 123.675]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='VRMVirtualView', transforms=[
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
             magnitude_std=0.5, hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic'))]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# the base's top-level data_preprocessor has no type (mmpretrain's ImageClassifier fills it in); the Runner would hand
# it to the algorithm, which uses the student's (the same ImageNet ClsDataPreprocessor) when given none
data_preprocessor = None
model = dict(
    _scope_='mmrazor',
    _delete_=True,
    type='VRMDistill',
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py', pretrained=False),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py', pretrained=False),
    teacher_ckpt='checkpoints/torchvision/resnet34_in1k_converted.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        # C = 1000: the ICV graph is 1000 x 1000 x 32 per GPU; the lean Gram path keeps it O(C^2)
        distill_losses=dict(
            loss_vrm=dict(type='VRMLoss', alpha=128.0, beta=32.0, percentile=90.0, zsnorm=True, adaptor=True,
                          num_classes=num_classes, icv_mode='bipartite', distance='mse', implementation='auto')),
        loss_forward_mappings=dict(
            loss_vrm=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
# [R] ramp alpha and beta in linearly over the first 1 epoch(s) (mmkd_ext/vrm/hooks.py)
custom_hooks = [dict(type='VRMLossWarmupHook', warmup_epochs=1)]
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='accuracy/top1', rule='greater'))
