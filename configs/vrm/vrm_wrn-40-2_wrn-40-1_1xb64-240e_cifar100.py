# VRM on CIFAR-100, WRN-40-2 -> WRN-40-1 (paper Table 1: teacher 75.61, student 71.98, VRM 76.46).
# The WRN-40-2 -> WRN-16-2 config with another student; same recipe as ResNet32x4 -> ResNet8x4.
# teacher_ckpt (from the base): CRD's released wrn_40_2 (75.61%), converted by tools/model_converters/repdistiller_to_mmkd.py
_base_ = ['./vrm_wrn-40-2_wrn-16-2_1xb64-240e_cifar100.py']
model = dict(architecture={{_base_.wrn_40_1}})  # same keys as the base's WRN-16-2: a plain merge replaces it
