# VRM on CIFAR-100, ResNet32x4 -> ResNet8x4 (paper Table 1: teacher 79.42, student 72.50, VRM 78.76).
# CRD protocol ([R] METHODS.md 5.8): 240 epochs, batch 64, SGD lr 0.05, x0.1 at 150/180/210, wd 5e-4.
# teacher_ckpt: CRD's released resnet32x4 (79.42%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py', '../_base_/default_runtime.py'
]
num_classes = 100
# Real view: crop (pad 4) + flip; virtual view: the same crop and flip + RandAugment with n = 2 ops (Table 5),
# magnitude 9 of 10 ([R] 5.2). pad_val: the CIFAR-100 mean colour.
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='VRMVirtualView', transforms=[
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
             magnitude_std=0.5, hparams=dict(pad_val=[129, 124, 112]))]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    _scope_='mmrazor',
    type='VRMDistill',
    architecture={{_base_.resnet8x4}},
    teacher={{_base_.resnet32x4}},
    teacher_ckpt='checkpoints/crd/resnet32x4_cifar100_converted.pth',
    ce_reduction='sum',  # CE(real) + CE(virtual), [R] V5
    separate_bn_forward=False,  # one 2B forward ([R] 5.2)
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_vrm=dict(type='VRMLoss', alpha=128.0, beta=32.0, percentile=90.0, zsnorm=True, adaptor=True,
                          num_classes=num_classes, icv_mode='bipartite', icv_prune=False, distance='mse',
                          implementation='auto')),
        loss_forward_mappings=dict(
            loss_vrm=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# [R] ramp alpha and beta in linearly over the first 20 epochs (mdistiller's DKD/LSKD protocol; mmkd_ext/vrm/hooks.py)
custom_hooks = [dict(type='VRMLossWarmupHook', warmup_epochs=20)]
