# Vanilla logit KD on ImageNet-1k (data/imagenet), torchvision-style ResNet-34 teacher -> ResNet-18 student,
# mmpretrain's 100-epoch recipe. The teacher is the KD papers' torchvision ResNet-34 (73.31), converted once by
# tools/model_converters/torchvision_to_mmpretrain.py resnet34-b627a593.pth THIS_PATH --arch resnet34 --verify
# (nothing is downloaded at run time; mmpretrain's resnet34_8xb32_in1k checkpoint also loads as is).
_base_ = ['mmpretrain::resnet/resnet18_8xb32_in1k.py']  # brings ImageNet data, schedule and runtime
default_scope = 'mmrazor'
custom_imports = dict(imports=['mmkd_ext'], allow_failed_imports=False)
# the base's top-level data_preprocessor has no type (mmpretrain's ImageClassifier fills it in); the Runner would hand
# it to the algorithm, which uses the student's (the same ImageNet ClsDataPreprocessor) when given none
data_preprocessor = None
model = dict(
    _scope_='mmrazor',
    _delete_=True,
    type='SingleTeacherDistill',
    architecture=dict(cfg_path='mmpretrain::resnet/resnet18_8xb32_in1k.py', pretrained=False),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet34_8xb32_in1k.py', pretrained=False),
    teacher_ckpt='checkpoints/torchvision/resnet34_in1k_converted.pth',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1)),
        loss_forward_mappings=dict(loss_kl=dict(
            preds_S=dict(from_student=True, recorder='fc'), preds_T=dict(from_student=False, recorder='fc')))))
find_unused_parameters = True
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
# 'best' by the student's metric (the val loop reports the teacher's too, as teacher.<metric>)
default_hooks = dict(checkpoint=dict(save_best='accuracy/top1', rule='greater'))
