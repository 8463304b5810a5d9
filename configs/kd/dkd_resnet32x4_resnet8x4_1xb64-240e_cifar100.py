# MMRazor's DKD baseline on the CIFAR-100 pair of VRM's Table 1 (ResNet32x4 -> ResNet8x4; DKD column: 76.32).
# Data, schedule, models and teacher checkpoint come from the vanilla KD config, which shares them with
# configs/vrm/vrm_resnet32x4_resnet8x4_1xb64-240e_cifar100.py. The distiller is the one of MMRazor's own
# mmrazor::distill/mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py (an ImageNet config, so it cannot be a second
# _base_: MMEngine forbids keys shared by two bases), unchanged except DKD's CIFAR-100 hyper-parameters (DKD paper,
# mdistiller res32x4_res8x4: T=4, alpha=1, beta=8, KL summed over classes and averaged over the batch);
# tests/compat/test_mmrazor_zoo.py checks that nothing else differs.
# Not reproduced: mdistiller's 20-epoch linear warm-up of the DKD loss (MMRazor has no such hook).
# teacher_ckpt: train configs/kd/resnet32x4_1xb64-240e_cifar100.py first.
_base_ = ['./kd_logits_resnet32x4_resnet8x4_1xb64-240e_cifar100.py']
model = dict(
    distiller=dict(
        _delete_=True,
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc'),
            gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_dkd=dict(type='DKDLoss', tau=4, alpha=1, beta=8, loss_weight=1, reduction='batchmean')),
        loss_forward_mappings=dict(
            loss_dkd=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'),
                gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1)))))
