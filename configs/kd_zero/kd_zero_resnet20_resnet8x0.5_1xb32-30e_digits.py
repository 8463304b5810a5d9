# KD-Zero final distillation on the digits demo pair (resnet20 -> resnet8x0.5): L = CE + L_KD(genome) (Eq. 3, single
# teacher). The genome below is the best of the demo search (configs/kd_zero/README.md); a search writes its own
# ready-to-train config (work_dir/best_distiller_config.py) that inherits this file and replaces the distiller.
# Teacher: configs/kd/resnet20_1xb32-30e_digits.py.
_base_ = [
    '../_base_/models/digits_classifiers.py', '../_base_/datasets/digits_bs32.py',
    '../_base_/schedules/digits_sgd_30e.py', '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/digits_teacher/epoch_30.pth'

# Where each knowledge input lives (used by the search to build candidate distillers) [R] METHODS.md 2.3:
# feature = last stage before pooling, embedding = pooled penultimate vector, logits = head.fc.
kd_zero_sources = dict(
    feature=dict(student='backbone.layer3', teacher='backbone.layer3', student_channels=32, teacher_channels=64),
    embedding=dict(student='neck', teacher='neck', student_channels=32, teacher_channels=64, data_idx=0),
    logits=dict(student='head.fc', teacher='head.fc'),
    labels=dict(student='head.loss_module', data_idx=1))
kd_zero_align_always = False  # True: 1x1 conv + BN on the student feature even when the widths match (32 -> 64 here)

# best of `torchrun --nproc_per_node 2 tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py
# --launcher pytorch` (27 candidates, 13 rejected; see README)
kd_zero_genome = dict(knowledge='feature', t1='catt', t2='sigmoid', t3='no', distance='pearson', weight=2.0,
                      calibration='conf', tau=4.0)
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.digits_student}},
    teacher={{_base_.digits_teacher}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(knowledge=dict(type='ModuleOutputs', source='backbone.layer3'),
                               logits=dict(type='ModuleOutputs', source='head.fc'),
                               labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(knowledge=dict(type='ModuleOutputs', source='backbone.layer3'),
                               logits=dict(type='ModuleOutputs', source='head.fc')),
        connectors=dict(kd_align=dict(type='ConvModuleConnector', in_channel=32, out_channel=64, kernel_size=1,
                                      norm_cfg=dict(type='BN'), act_cfg=None)),
        distill_losses=dict(loss_kdzero=dict(type='KDZeroLoss', genome=kd_zero_genome)),
        loss_forward_mappings=dict(
            loss_kdzero=dict(
                preds_S=dict(from_student=True, recorder='knowledge', connector='kd_align'),
                preds_T=dict(from_student=False, recorder='knowledge'),
                logits_S=dict(from_student=True, recorder='logits'),
                logits_T=dict(from_student=False, recorder='logits'),
                gt_labels=dict(from_student=True, recorder='labels', data_idx=1)))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
