# VRM (virtual relation matching) on the built-in digits data: resnet20 teacher -> resnet8 student.
# Teacher: python tools/train.py configs/kd/resnet20_1xb32-30e_digits.py --work-dir work_dirs/digits_teacher
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
# Real view: the base weak augmentation; virtual view: the same crop + RandAugment, n = 2 ops (paper Table 5),
# magnitude 9 of 10 ([R] METHODS.md 5.2).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=3),
    dict(type='VRMVirtualView', transforms=[
        dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10, magnitude_level=9,
             magnitude_std=0.5, hparams=dict(pad_val=0))]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

teacher_ckpt = 'work_dirs/digits_teacher/epoch_30.pth'
num_classes = 10
model = dict(
    _scope_='mmrazor',
    type='VRMDistill',
    architecture={{_base_.digits_student}},
    teacher={{_base_.digits_teacher}},
    teacher_ckpt=teacher_ckpt,
    ce_reduction='sum',
    separate_bn_forward=False,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            # alpha: the paper's 128 is for C = 100 classes, where the per-element MSE of unit edges is <= 4/C
            # ([R] METHODS.md 5.7); with C = 10 the same per-edge weight is 128 * 10 / 100 = 12.8
            loss_vrm=dict(type='VRMLoss', alpha=12.8, beta=32.0, percentile=90.0, zsnorm=True, adaptor=True,
                          num_classes=num_classes, icv_mode='bipartite', distance='mse')),
        loss_forward_mappings=dict(
            loss_vrm=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# [R] ramp alpha and beta in linearly over the first 5 of 30 epochs (see mmkd_ext/vrm/hooks.py for why)
custom_hooks = [dict(type='VRMLossWarmupHook', warmup_epochs=5)]
