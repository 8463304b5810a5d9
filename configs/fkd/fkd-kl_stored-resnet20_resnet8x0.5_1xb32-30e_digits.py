# "Stored teacher": MMRazor's own logit KD (SingleTeacherDistill + ConfigurableDistiller + KLDivergence)
# trained teacher-free, the label store standing in for the resnet20 teacher (mmkd_ext.fkd.StoredTeacher).
# The student keeps its hard-label CE; the KL term reads the stored soft labels (key fkd_score).
_base_ = ['./fkd_resnet20_resnet8x0.5_1xb32-30e_digits.py']
model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.model.architecture}},
    teacher=dict(type='StoredTeacher', label_key='fkd_score'),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='logits')),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=4, loss_weight=3)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
train_dataloader = dict(
    dataset=dict(
        label_key='fkd_score',
        pipeline=[dict(type='FKDReplayCrop', scale=32, interpolation='bilinear'),
                  dict(type='PackInputs', algorithm_keys=['fkd_score'])]))
find_unused_parameters = True
