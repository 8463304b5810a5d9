# The distiller of MMRazor's mmrazor::distill/mmcls/dkd/dkd_resnet34_resnet18_8xb32_in1k.py, unchanged except DKD's
# CIFAR-100 hyper-parameters (DKD paper, mdistiller res32x4_res8x4: T=4, alpha=1, beta=8, KL summed over classes and
# averaged over the batch); tests/compat/test_mmrazor_zoo.py checks that nothing else differs. One variable, so it can
# be a second _base_ next to a config that brings data, schedule, models and teacher (no shared keys).
dkd_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        fc=dict(type='ModuleOutputs', source='head.fc'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_dkd=dict(type='DKDLoss', tau=4, alpha=1, beta=8, loss_weight=1, reduction='batchmean')),
    loss_forward_mappings=dict(
        loss_dkd=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'),
            gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1))))
