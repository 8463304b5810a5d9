# KD-Zero on Cityscapes: DeepLabV3-R101 teacher -> DeepLabV3-R18 (74.21 -> 77.38 mIoU) (paper Table 6; K9: the table's teacher is
# DeepLabV3-R101, 78.07 mIoU). [R] METHODS.md 2.8: the distiller acts on the final feature map before the classifier
# (decode_head.bottleneck, pixels as samples); the student's 128 channels are aligned to the teacher's 512 by a
# 1x1 conv + BN. 40K iterations, batch 8 (4 x 2), SGD momentum 0.9, weight decay 5e-4 [P], lr 0.01 poly [R]. The genome
# is our [R] default (the paper's searched segmentation distiller is not published).
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py', 'mmseg::_base_/schedules/schedule_40k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)  # registers KDZeroLoss
teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x1024_40k_cityscapes/deeplabv3_r101-d8_512x1024_40k_cityscapes_20200605_012241-7fd3f799.pth'  # noqa: E501
kd_zero_sources = dict(
    feature=dict(student='decode_head.bottleneck', teacher='decode_head.bottleneck', student_channels=128,
                 teacher_channels=512),
    logits=dict(student='decode_head.conv_seg', teacher='decode_head.conv_seg'))
kd_zero_genome = dict(knowledge='feature', t1='no', t2='no', t3='softmax_HW', distance='kl', weight=0.05,
                      calibration='no', tau=4.0)
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py', pretrained=False),
    teacher=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(knowledge=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
        teacher_recorders=dict(knowledge=dict(type='ModuleOutputs', source='decode_head.bottleneck')),
        connectors=dict(kd_align=dict(type='ConvModuleConnector', in_channel=128, out_channel=512, kernel_size=1,
                                      norm_cfg=dict(type='BN'), act_cfg=None)),
        distill_losses=dict(loss_kdzero=dict(type='KDZeroLoss', genome=kd_zero_genome)),
        loss_forward_mappings=dict(
            loss_kdzero=dict(
                preds_S=dict(from_student=True, recorder='knowledge', connector='kd_align'),
                preds_T=dict(from_student=False, recorder='knowledge')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='mIoU', rule='greater'))
