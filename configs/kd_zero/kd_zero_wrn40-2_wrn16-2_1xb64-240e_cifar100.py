# KD-Zero final distillation on CIFAR-100, WRN-40-2 -> WRN-16-2 (paper Table 3: 76.42). L = CE + L_KD(genome) (Eq. 3).
# Recipe, distiller and [R] default genome of the resnet110 -> resnet20 config; only the pair changes (CRD-exact
# CIFAR WRNs of mmkd_ext.models). Feature knowledge = the last stage after the final BN + ReLU (backbone.relu).
_base_ = ['./kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/wrn_40_2_cifar100_converted.pth'  # CRD released wrn_40_2 (75.61%), converted

kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student='backbone.relu', teacher='backbone.relu', student_channels=128, teacher_channels=128),
    embedding=dict(student_channels=128, teacher_channels=128))
# Models from ../_base_/models/cifar100_classifiers.py; _delete_ replaces the base's ResNets.
model = dict(
    architecture=dict(_delete_=True, **_base_.wrn_16_2),
    teacher=dict(_delete_=True, **_base_.wrn_40_2),
    teacher_ckpt=teacher_ckpt)
