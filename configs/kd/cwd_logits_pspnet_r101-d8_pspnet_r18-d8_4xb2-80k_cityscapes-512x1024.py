# Pixel-logit distillation on Cityscapes (data/cityscapes): PSPNet R-101 teacher -> PSPNet R-18 student,
# ChannelWiseDivergence (tau=1) on conv_seg logits (the CWD paper's segmentation setting, 74.87 -> 75.54 mIoU there).
_base_ = ['mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py']
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
model = dict(
    _scope_='mmrazor',
    _delete_=True,
    type='SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py', pretrained=False),
    teacher=dict(cfg_path='mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py', pretrained=False),
    teacher_ckpt='checkpoints/pspnet_r101-d8_512x1024_80k_cityscapes_20200606_112211-e1e1100f.pth',
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
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater'))
