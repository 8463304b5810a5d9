# FPN feature distillation for detection with MMRazor's own pieces: FpnTeacherDistill (the teacher runs backbone +
# neck only) and ChannelWiseDivergence (Shu et al., ICCV 2021) on FPN levels P3-P6 (P7 is 1x1 on 128-pixel images: no spatial distribution to match).
# Teacher: configs/kd/retinanet_r18_1xb8-12e_shapes.py.
_base_ = [
    '../_base_/models/shapes_retinanets.py', '../_base_/datasets/shapes_coco_bs8.py',
    '../_base_/schedules/shapes_sgd_12e.py', '../_base_/default_runtime.py'
]
teacher_ckpt = 'work_dirs/shapes_teacher/epoch_12.pth'
model = dict(
    _scope_='mmrazor',
    type='FpnTeacherDistill',
    architecture={{_base_.shapes_student}},
    teacher={{_base_.shapes_teacher}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders={f'fpn{i}': dict(type='ModuleOutputs', source=f'neck.fpn_convs.{i}.conv') for i in range(4)},
        teacher_recorders={f'fpn{i}': dict(type='ModuleOutputs', source=f'neck.fpn_convs.{i}.conv') for i in range(4)},
        distill_losses={f'loss_cwd_fpn{i}': dict(type='ChannelWiseDivergence', tau=1, loss_weight=5) for i in range(4)},
        loss_forward_mappings={
            f'loss_cwd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder=f'fpn{i}'),
                preds_T=dict(from_student=False, recorder=f'fpn{i}')) for i in range(4)
        }))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
