# KD-Zero on ImageNet, ResNet-34 -> ResNet-18 (paper Table 4: 72.17 top-1). 100 epochs, lr 0.1 x0.1 at 30/60/90
# [P] (mmpretrain's imagenet_bs256 schedule), batch 8 x 32 = 256 [R]. The genome is our [R] default (the paper's
# searched genome is not published); `tools/kd_zero/search.py` on an ImageNet subset writes a replacement config.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py', 'mmpretrain::_base_/schedules/imagenet_bs256.py',
    '../_base_/default_runtime.py'
]
# the paper's teacher (Table 4: 73.40 top-1), torchvision's ResNet-34, converted by
# tools/model_converters/torchvision_to_mmpretrain.py resnet34-b627a593.pth THIS_PATH --arch resnet34 --verify
teacher_ckpt = 'checkpoints/torchvision/resnet34_in1k_converted.pth'
kd_zero_sources = dict(
    feature=dict(student='backbone.layer4', teacher='backbone.layer4', student_channels=512, teacher_channels=512),
    embedding=dict(student='neck', teacher='neck', student_channels=512, teacher_channels=512, data_idx=0),
    logits=dict(student='head.fc', teacher='head.fc'),
    labels=dict(student='head.loss_module', data_idx=1))
kd_zero_align_always = True  # [P] 1x1 conv (+ BN [R]) on the student feature
kd_zero_genome = dict(knowledge='feature', t1='no', t2='no', t3='softmax_HW', distance='kl', weight=0.01,
                      calibration='no', tau=4.0)
# the base's top-level data_preprocessor has no type (mmpretrain's ImageClassifier fills it in); the Runner would hand
# it to the algorithm, which uses the student's (the same ImageNet ClsDataPreprocessor) when given none
data_preprocessor = None
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True),
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py', pretrained=False),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py', pretrained=False),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(knowledge=dict(type='ModuleOutputs', source='backbone.layer4')),
        teacher_recorders=dict(knowledge=dict(type='ModuleOutputs', source='backbone.layer4')),
        connectors=dict(kd_align=dict(type='ConvModuleConnector', in_channel=512, out_channel=512, kernel_size=1,
                                      norm_cfg=dict(type='BN'), act_cfg=None)),
        distill_losses=dict(loss_kdzero=dict(type='KDZeroLoss', genome=kd_zero_genome)),
        loss_forward_mappings=dict(
            loss_kdzero=dict(
                preds_S=dict(from_student=True, recorder='knowledge', connector='kd_align'),
                preds_T=dict(from_student=False, recorder='knowledge')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
