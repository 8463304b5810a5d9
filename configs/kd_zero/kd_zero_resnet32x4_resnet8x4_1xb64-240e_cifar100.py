# KD-Zero final distillation on CIFAR-100, resnet32x4 -> resnet8x4 (paper Table 3). L = CE + L_KD(genome) (Eq. 3).
# The recipe, distiller and [R] default genome are those of the resnet110 -> resnet20 config; only the pair changes.
# A search (search_kd_zero_resnet110_resnet20_cifar100.py pattern) writes best_distiller_config.py, which inherits
# this file and replaces the distiller.
_base_ = ['./kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/resnet32x4_cifar100_converted.pth'  # CRD released resnet32x4 (79.42%), converted

kd_zero_sources = dict(  # [R] METHODS.md 2.3: last stage / pooled embedding / logits
    feature=dict(student_channels=256, teacher_channels=256),
    embedding=dict(student_channels=256, teacher_channels=256))
model = dict(
    architecture={{_base_.resnet8x4}},
    teacher={{_base_.resnet32x4}},
    teacher_ckpt=teacher_ckpt)
