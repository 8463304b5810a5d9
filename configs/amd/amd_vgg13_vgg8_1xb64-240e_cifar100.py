# AMD, supp. Table 7 (CNNs, CIFAR-100): VGG13 teacher -> TA (greedy filter pruning of VGG13) -> VGG8.
#   python tools/amd/run.py configs/amd/amd_vgg13_vgg8_1xb64-240e_cifar100.py
# The TA candidates are VGG13s with fewer filters in every conv that feeds another conv (the conv, its BN and the
# next conv's input; Li et al. [17] prune VGG this way), between the teacher and the student's FLOPs
# (VGG8 = 0.34 x VGG13); the fixed VGG8 is then distilled from the selected TA ([R] METHODS.md §1.9).
# Paper: teacher 75.38, student 70.68, KD 72.98, DGKD 74.40, AMD 74.47.
# teacher_ckpt: CRD's released vgg13 (74.64%), converted by tools/model_converters/repdistiller_to_mmkd.py
# Recipe (selection, loss weights, optimizer, schedule, loops) of the ResNet56 -> ResNet20 config; only the pair
# changes. CRD-style CIFAR VGGs with BN from ../_base_/models/cifar100_classifiers.py (_delete_: replace the ResNets).
_base_ = ['./amd_resnet56_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/vgg13_cifar100_converted.pth'
student_scale = 0.34  # FLOPs(VGG8) / FLOPs(VGG13) = 96.5 M / 285.5 M (MMEngine count, 32 px)
amd = dict(
    student_scale=student_scale,
    final_student=dict(_delete_=True, **_base_.vgg8),
    # [R] only the last block's output is mimicked: it is the one VGG map whose width pruning keeps (512 in VGG13,
    # its candidates and VGG8); the earlier block outputs of a candidate carry its pruned channels
    final_feature_modules=['backbone.blocks.4'],
    teacher_accuracy=75.38,  # [P] Table 7
)
model = dict(
    architecture=dict(_delete_=True, **_base_.vgg13),
    teacher=dict(_delete_=True, **_base_.vgg13),
    teacher_ckpt=teacher_ckpt,
    # the base computed its scales from its own student_scale: recompute them for this one
    scales=[round(1 - k * (1 - student_scale) / _base_.num_candidates, 10)
            for k in range(1, _base_.num_candidates + 1)],
    feature_modules=['backbone.blocks.4'])
