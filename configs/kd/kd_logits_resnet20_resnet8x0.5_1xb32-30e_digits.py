# Vanilla logit KD (Hinton et al.) with MMRazor's own pieces: SingleTeacherDistill, ConfigurableDistiller,
# KLDivergence(tau=4) on head.fc. Teacher: configs/kd/resnet20_1xb32-30e_digits.py.
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/digits_teacher/epoch_30.pth'
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.digits_student}},
    teacher={{_base_.digits_teacher}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=4, loss_weight=3)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
