# KD-Zero on COCO: Cascade Mask R-CNN-X101 -> Faster R-CNN-R50 (38.4 -> 41.8 AP) (paper Table 5). The searched distiller is applied to every FPN level
# ([R] METHODS.md 2.8; 256 channels in both, so no aligner) and summed, plus the detector's own losses; 2x schedule
# (24 epochs), SGD momentum 0.9, weight decay 1e-4 [P]. The paper (Sec. 4.3) reuses the distiller searched on
# ImageNet, which is not published: this config is meant to take the best genome of
# search_kd_zero_resnet34_resnet18_in1k-subset.py (its best_genome.json -> kd_zero_genome of the RetinaNet config,
# which this one inherits; no detection search: a search config on this file is refused). Until then the genome is our [R] default, the CWD-like point of the space
# (spatial softmax + KL, tau 4; KL is summed over the 256 channels, so W_f = 0.05 ~ CWD's weight 10 / 256).
# Same distiller, schedule and recipe as the RetinaNet pair; only the detectors, the teacher checkpoint and the
# two-stage learning rate change.
_base_ = ['./kd_zero_fpn_retinanet-x101-64x4d_retinanet-r50_8xb2-2x_coco.py']
teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco/cascade_mask_rcnn_x101_64x4d_fpn_20e_coco_20200512_161033-bdb5126a.pth'  # noqa: E501
model = dict(
    architecture=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_20e_coco.py'),
    teacher_ckpt=teacher_ckpt)
optim_wrapper = dict(optimizer=dict(lr=0.02))
