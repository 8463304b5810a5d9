# KD-Zero search on Cityscapes, DeepLabV3-R101 -> DeepLabV3-R18 (paper Table 6), [P] population 20 / 100 iterations /
# proxy = 5% of the 40K iterations (2,000 iterations, poly schedule compressed proportionally [R]). The fitness uses
# pixels as samples ([R] METHODS.md 2.4 + 2.8): pixel CE (label 255 ignored) + |mean-pixel sharpness gap| - linear
# CKA of the global-average-pooled decode-head inputs (one vector per image); pixel accuracy for min_accuracy.
# [R] The fitness split holds out every 10th training image (297 of 2,975); the proxy trains on the other 2,678.
# The val set (the reported mIoU) is never searched on.
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_deeplabv3-r101_deeplabv3-r18_cityscapes.py
# The best genome goes into kd_zero_deeplabv3-r101_{deeplabv3,pspnet}-r18_4xb2-40k_cityscapes-512x1024.py
# (best_distiller_config.py inherits the DeepLabV3 one).
base_config = '{{fileDirname}}/kd_zero_deeplabv3-r101_deeplabv3-r18_4xb2-40k_cityscapes-512x1024.py'
work_dir = 'work_dirs/kd_zero_search_deeplabv3-r101_deeplabv3-r18_cityscapes'
# [R] segmentation space: feature knowledge only (kd_zero_sources define the decode-head feature map; the 'logits'
# gene means (B, K) class logits) and no calibration (W_Cal is one weight per sample, the logit map is per pixel)
search_space = dict(knowledge=('feature', ), slot_typing=True, calibrations=('no', ))
search = dict(population_size=20, iterations=100, parents=10, p_swap=0.5, p_mutation=0.2, offspring_per_generation=1,
              mode='evolution', shrink_interval=10, shrink_eta=0.1, tail_fraction=0.25, fitness_normalize=True,
              seed=0)
proxy = dict(
    task='segmentation',
    # [R] a proxy is one process at the per-GPU batch 2; the lr 0.01 is tuned for 4 GPUs x 2 = 8, so the proxy trains
    # at 0.01 x 2/8 = 0.0025 (linear rule, MMEngine auto_scale_lr)
    base_batch_size=8,
    fraction=0.05,
    seed=0,
    rejection=dict(max_kd=1e3, max_kd_ratio=100.0, min_drop=0.05),  # [R] METHODS.md 2.5; collapse judged at 1 epoch
    # every 10th training image is held out (mmkd_ext/held_out.py): the proxies train on the other 2,678 and the
    # fitness uses the 297 held out, with the val pipeline (full 2048x1024 images)
    held_out_every=10,
    fitness_samples=297,
    min_accuracy=200 / 19,  # [R] 2 x chance of the 19 classes (pixel accuracy)
    seg_options=dict(ignore_index=255, cka_feature='head_input', cka_pixels=0))
top_k = 10
