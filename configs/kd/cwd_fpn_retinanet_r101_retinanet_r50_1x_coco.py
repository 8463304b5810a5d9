# FPN feature distillation on COCO (data/coco): RetinaNet R-101 teacher -> RetinaNet R-50 student, MMRazor
# FpnTeacherDistill + ChannelWiseDivergence on the five FPN levels (the CWD paper's detection setting).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
model = dict(
    _scope_='mmrazor',
    _delete_=True,
    type='FpnTeacherDistill',
    architecture=dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', pretrained=False),
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt='checkpoints/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders={f'fpn{i}': dict(type='ModuleOutputs', source=f'neck.fpn_convs.{i}.conv') for i in range(5)},
        teacher_recorders={f'fpn{i}': dict(type='ModuleOutputs', source=f'neck.fpn_convs.{i}.conv') for i in range(5)},
        distill_losses={f'loss_cwd_fpn{i}': dict(type='ChannelWiseDivergence', tau=1, loss_weight=10) for i in range(5)},
        loss_forward_mappings={
            f'loss_cwd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder=f'fpn{i}'),
                preds_T=dict(from_student=False, recorder=f'fpn{i}')) for i in range(5)
        }))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='coco/bbox_mAP', rule='greater'))
