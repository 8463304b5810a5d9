# VRM on ImageNet-1k, ResNet-50 -> MobileNet (paper Table 2: teacher 76.16, student 68.87, VRM 74.16 top-1).
# The paper's table says MobileNetV1, its abstract MobileNetV2 (METHODS.md V6); mmpretrain ships MobileNetV2 only,
# so the student here is MobileNetV2 (width 1.0). Recipe as vrm_resnet34_resnet18 (100 epochs, lr 0.1, steps).
# Teacher: torchvision's ResNet-50 (76.16 as the paper reports it; resnet50-0676ba61.pth), converted by
# tools/model_converters/torchvision_to_mmpretrain.py --arch resnet50.
_base_ = ['./vrm_resnet34_resnet18_8xb32-100e_in1k.py']
model = dict(
    architecture=dict(cfg_path='mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py', pretrained=False),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py', pretrained=False),
    teacher_ckpt='checkpoints/torchvision/resnet50_in1k_converted.pth')
