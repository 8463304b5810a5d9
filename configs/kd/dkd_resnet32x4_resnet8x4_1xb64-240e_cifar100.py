# MMRazor's DKD baseline on the CIFAR-100 pair of VRM's Table 1 (ResNet32x4 -> ResNet8x4; DKD column: 76.32).
# Data, schedule, models and teacher checkpoint come from the vanilla KD config, which shares them with
# configs/vrm/vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py; the distiller is MMRazor's DKD distiller with DKD's
# CIFAR-100 hyper-parameters (_base_/mmrazor_dkd_distiller.py). MMRazor's DKD config itself is an ImageNet config
# and cannot be a second _base_ (MMEngine forbids keys shared by two bases).
# Not reproduced: mdistiller's 20-epoch linear warm-up of the DKD loss (MMRazor has no such hook).
# teacher_ckpt: train configs/kd/resnet32x4_1xb64-240e_cifar100.py first.
_base_ = ['./kd_logits_resnet32x4_resnet8x4_1xb64-240e_cifar100.py', './_base_/mmrazor_dkd_distiller.py']
model = dict(distiller=dict(_delete_=True, **_base_.dkd_distiller))
