# KD-Zero on Cityscapes: DeepLabV3-R101 teacher -> PSPNet-R18 (72.55 -> 76.25 mIoU) (paper Table 6; K9: the table's teacher is
# DeepLabV3-R101, 78.07 mIoU). [R] METHODS.md 2.8: the distiller acts on the final feature map before the classifier
# (decode_head.bottleneck, pixels as samples); the student's 128 channels are aligned to the teacher's 512 by a
# 1x1 conv + BN. 40K iterations, batch 8 (4 x 2), SGD momentum 0.9, weight decay 5e-4 [P], lr 0.01 poly [R]. The genome
# is our [R] default (the paper's searched segmentation distiller is not published).
# Same teacher, distiller and recipe as the DeepLabV3-R18 student; only the student changes.
_base_ = ['./kd_zero_deeplabv3-r101_deeplabv3-r18_4xb2-40k_cityscapes-512x1024.py']
model = dict(architecture=dict(cfg_path='mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py'))
