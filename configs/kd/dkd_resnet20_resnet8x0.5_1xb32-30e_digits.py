# MMRazor's DKD baseline on the demo digits: data, schedule, models and teacher checkpoint of the vanilla KD config
# (shared with configs/vrm/vrm_resnet20_resnet8x0.5_1xb32-30e_digits.py), MMRazor's DKD distiller with DKD's CIFAR
# hyper-parameters (_base_/mmrazor_dkd_distiller.py). Teacher: configs/kd/resnet20_1xb32-30e_digits.py.
_base_ = ['./kd_logits_resnet20_resnet8x0.5_1xb32-30e_digits.py', './_base_/mmrazor_dkd_distiller.py']
model = dict(distiller=dict(_delete_=True, **_base_.dkd_distiller))
