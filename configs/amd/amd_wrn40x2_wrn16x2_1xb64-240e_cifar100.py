# AMD, supp. Table 7 (CNNs, CIFAR-100): WRN-40-2 teacher -> TA (greedy filter pruning of WRN-40-2) -> WRN-16-2.
#   python tools/amd/run.py configs/amd/amd_wrn40x2_wrn16x2_1xb64-240e_cifar100.py
# The TA candidates are WRN-40-2s whose pre-activation blocks lose inner channels (conv1 -> bn2 -> conv2), between
# the teacher and the student's FLOPs (WRN-16-2 = 0.31 x WRN-40-2); the fixed WRN-16-2 is then distilled from the
# selected TA ([R] METHODS.md §1.9). Paper: teacher 76.46, student 73.64, KD 74.92, DGKD 76.24, AMD 76.06.
# teacher_ckpt: CRD's released wrn_40_2 (75.61%), converted by tools/model_converters/repdistiller_to_mmkd.py
# Recipe (selection, loss weights, optimizer, schedule, loops) of the ResNet56 -> ResNet20 config; only the pair
# changes. CRD-style CIFAR Wide ResNets from ../_base_/models/cifar100_classifiers.py (_delete_: replace the ResNets).
_base_ = ['./amd_resnet56_resnet20_1xb64-240e_cifar100.py']
teacher_ckpt = 'checkpoints/crd/wrn_40_2_cifar100_converted.pth'
student_scale = 0.31  # FLOPs(WRN-16-2) / FLOPs(WRN-40-2) = 101.6 M / 329.0 M (MMEngine count, 32 px)
amd = dict(
    student_scale=student_scale,
    final_student=dict(_delete_=True, **_base_.wrn_16_2),
    # stage outputs are residual widths (32, 64, 128) in both networks, untouched by pruning: no connector
    final_feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'],
    teacher_accuracy=76.46,  # [P] Table 7
)
model = dict(
    architecture=dict(_delete_=True, **_base_.wrn_40_2),
    teacher=dict(_delete_=True, **_base_.wrn_40_2),
    teacher_ckpt=teacher_ckpt,
    # the base computed its scales from its own student_scale: recompute them for this one
    scales=[round(1 - k * (1 - student_scale) / _base_.num_candidates, 10)
            for k in range(1, _base_.num_candidates + 1)],
    feature_modules=['backbone.layer1', 'backbone.layer2', 'backbone.layer3'])
