# Pixel-logit distillation for segmentation with MMRazor's own pieces: SingleTeacherDistill and
# ChannelWiseDivergence (tau=1) on the decode heads' class logits (conv_seg).
# Teacher: configs/kd/pspnet_r18-d8_1xb4-600it_cityscapes-demo.py.
_base_ = [
    '../_base_/models/cityscapes_demo_segmentors.py', '../_base_/datasets/cityscapes_demo_bs4.py',
    '../_base_/default_runtime.py', '../_base_/schedules/cityscapes_demo_sgd_600it.py'
]
default_hooks = dict(logger=dict(interval=20, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
teacher_ckpt = 'work_dirs/cityscapes_teacher/iter_600.pth'
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.cityscapes_student}},
    teacher={{_base_.cityscapes_teacher}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        distill_losses=dict(loss_cwd=dict(type='ChannelWiseDivergence', tau=1, loss_weight=3)),
        student_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='decode_head.conv_seg')),
        loss_forward_mappings=dict(loss_cwd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
