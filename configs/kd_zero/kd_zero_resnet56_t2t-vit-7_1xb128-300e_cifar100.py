# KD-Zero on CIFAR-100, resnet56 -> T2T-ViT-7 (paper Table 3: 78.32). Recipe, teacher (CRD's, at 32 px) and distiller of
# the resnet56 -> DeiT-Ti config; the student is mmpretrain's T2T_ViT configured as T2T-ViT-7 (7 layers, 256 dims,
# 4 heads, MLP ratio 2, 64-dim T2T tokens). [R] mmpretrain's T2T module is the transformer variant (T2T-ViT_t);
# the paper's T2T-ViT-7 uses Performer tokens (use_performer=True is not implemented in mmpretrain).
# R56 -> PVT-Ti (77.22) is not provided: PVT-Tiny is not in mmpretrain (only Twins' PCPVT/SVT).
_base_ = ['./kd_zero_resnet56_deit-tiny_1xb128-300e_cifar100.py']
kd_zero_sources = dict(embedding=dict(student_channels=256))
model = dict(
    architecture=dict(
        backbone=dict(_delete_=True, type='T2T_ViT', img_size=224, embed_dims=256, num_layers=7,
                      layer_cfgs=dict(num_heads=4, feedforward_channels=512), t2t_cfg=dict(token_dims=64),
                      drop_path_rate=0.1),
        head=dict(in_channels=256)))
