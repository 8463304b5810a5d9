# KD-Zero final distillation on CIFAR-100, resnet110 -> resnet20 (paper Table 3). L = CE + L_KD(genome) (Eq. 3).
# The genome is the [R] default until a search (search_kd_zero_resnet110_resnet20_cifar100.py pattern) writes
# best_distiller_config.py, which inherits this file and replaces the distiller.
_base_ = [
    '../_base_/models/cifar100_classifiers.py', './_base_/cifar100_bs64_240e.py', '../_base_/default_runtime.py'
]
teacher_ckpt = 'checkpoints/crd/resnet110_cifar100_converted.pth'  # CRD released resnet110 (74.31%), converted

kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student='backbone.layer3', teacher='backbone.layer3', student_channels=64, teacher_channels=64),
    embedding=dict(student='neck', teacher='neck', student_channels=64, teacher_channels=64, data_idx=0),
    logits=dict(student='head.fc', teacher='head.fc'),
    labels=dict(student='head.loss_module', data_idx=1))
kd_zero_align_always = True  # [P] "simple 1x1-Conv" on the student feature
kd_zero_genome = dict(knowledge='logits', t1='no', t2='no', t3='softmax_C', distance='kl', weight=1.0,
                      calibration='focal', tau=4.0)
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.resnet20}},  # CRD-style CIFAR ResNets of ../_base_/models/cifar100_classifiers.py
    teacher={{_base_.resnet110}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(knowledge=dict(type='ModuleOutputs', source='head.fc'),
                               logits=dict(type='ModuleOutputs', source='head.fc'),
                               labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(knowledge=dict(type='ModuleOutputs', source='head.fc'),
                               logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kdzero=dict(type='KDZeroLoss', genome=kd_zero_genome)),
        loss_forward_mappings=dict(
            loss_kdzero=dict(
                preds_S=dict(from_student=True, recorder='knowledge'),
                preds_T=dict(from_student=False, recorder='knowledge'),
                logits_S=dict(from_student=True, recorder='logits'),
                logits_T=dict(from_student=False, recorder='logits'),
                gt_labels=dict(from_student=True, recorder='labels', data_idx=1)))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
