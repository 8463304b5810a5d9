# KD-Zero final distillation on the built-in street-scenes demo (Cityscapes layout, data/demo/cityscapes): PSPNet-R18
# teacher -> half-width FCN-R18 student, L = CE + L_KD(genome) (Eq. 3). [R] METHODS.md 2.8: the distiller acts on the
# final feature map before the classifier (64 channels in both, so no aligner), pixels as samples. The genome is our
# [R] CWD-like default; search_kd_zero_pspnet-r18_fcn-r18-w32_cityscapes-demo.py writes a replacement.
# Teacher: configs/kd/pspnet_r18-d8_1xb4-600it_cityscapes-demo.py.
_base_ = [
    '../_base_/models/cityscapes_demo_segmentors.py', '../_base_/datasets/cityscapes_demo_bs4.py',
    '../_base_/default_runtime.py', '../_base_/schedules/cityscapes_demo_sgd_600it.py'
]
default_hooks = dict(logger=dict(interval=20, log_metric_by_epoch=False),
                     checkpoint=dict(by_epoch=False, interval=200, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
teacher_ckpt = 'work_dirs/cityscapes_teacher/iter_600.pth'
kd_zero_sources = dict(  # FCNHead: convs -> conv_seg; PSPHead: bottleneck -> conv_seg
    feature=dict(student='decode_head.convs', teacher='decode_head.bottleneck', student_channels=64,
                 teacher_channels=64),
    logits=dict(student='decode_head.conv_seg', teacher='decode_head.conv_seg'))
kd_zero_genome = dict(knowledge='feature', t1='no', t2='no', t3='softmax_HW', distance='kl', weight=0.05,
                      calibration='no', tau=4.0)
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture={{_base_.cityscapes_student}},
    teacher={{_base_.cityscapes_teacher}},
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(knowledge=dict(type='ModuleOutputs', source='decode_head.convs')),
        teacher_recorders=dict(knowledge=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
        distill_losses=dict(loss_kdzero=dict(type='KDZeroLoss', genome=kd_zero_genome)),
        loss_forward_mappings=dict(
            loss_kdzero=dict(
                preds_S=dict(from_student=True, recorder='knowledge'),
                preds_T=dict(from_student=False, recorder='knowledge')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
