# Vanilla logit KD on CIFAR-100 (the CRD benchmark pair ResNet32x4 -> ResNet8x4; KD reference 73.33 in CRD Table 1).
# teacher_ckpt: CRD's released resnet32x4 (79.42%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = [
    '../_base_/models/cifar100_classifiers.py', '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_sgd_240e.py', '../_base_/default_runtime.py'
]
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.resnet8x4}},
    teacher={{_base_.resnet32x4}},
    teacher_ckpt='checkpoints/crd/resnet32x4_cifar100_converted.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=4, loss_weight=0.9 * 16)),
        loss_forward_mappings=dict(loss_kl=dict(
            preds_S=dict(from_student=True, recorder='fc'), preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
