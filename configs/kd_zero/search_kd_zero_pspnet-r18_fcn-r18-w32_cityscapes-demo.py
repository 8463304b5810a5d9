# Demo KD-Zero search on segmentation: the street-scenes demo pair (PSPNet-R18 -> FCN-R18 half width), real mmseg
# CityscapesDataset on data/demo/cityscapes. Tiny on purpose (tests run it end to end): population 2, 1 iteration,
# proxy = 3 of 600 iterations at batch 2. The fitness uses pixels as samples ([R] METHODS.md 2.4 + 2.8): pixel CE (label 255
# ignored) + |mean-pixel sharpness gap| - linear CKA of the pooled decode-head inputs; pixel accuracy for min_accuracy.
#   python tools/train.py configs/kd/pspnet_r18-d8_1xb4-600it_cityscapes-demo.py --work-dir work_dirs/cityscapes_teacher
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_pspnet-r18_fcn-r18-w32_cityscapes-demo.py
base_config = '{{fileDirname}}/kd_zero_pspnet-r18_fcn-r18-w32_1xb4-600it_cityscapes-demo.py'
work_dir = 'work_dirs/kd_zero_search_cityscapes_demo'
# [R] segmentation space: feature knowledge only (the sources define the 4-D decode-head feature; the 'logits' gene
# means (B, K) class logits) and no calibration (W_Cal is one weight per sample, the logit map is per pixel)
search_space = dict(knowledge=('feature', ), slot_typing=True, calibrations=('no', ),
                    weights=(0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0))
search = dict(population_size=2, iterations=1, parents=2, p_swap=0.5, p_mutation=0.2, offspring_per_generation=1,
              mode='evolution', shrink_interval=10, shrink_eta=0.1, tail_fraction=0.25, fitness_normalize=True,
              seed=0)
_test_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'), dict(type='PackSegInputs')
]
proxy = dict(
    task='segmentation',  # 'auto' infers it from the student's mmseg scope
    fraction=3 / 600,  # 3 iterations; [P] 5% (30 of 600)
    seed=0,
    # [R] METHODS.md 2.5 thresholds; the collapse rule judges the end of the 3-iteration proxy and only rejects a
    # loss that did not fall at all (a few SGD steps of a segmentor do not reliably drop 5%)
    rejection=dict(max_kd=1e3, max_kd_ratio=100.0, min_drop=0.0),
    cfg_options=dict(train_dataloader=dict(batch_size=2)),  # demo: 2 crops per proxy iteration (final KD: 4)
    base_batch_size=4,  # [R] lr 0.01 is tuned for batch 4: the proxy trains at 0.01 x 2/4 = 0.005 (linear rule)
    # the demo has no held-out train split: the fitness uses 4 of the 20 val scenes
    fitness_dataloader=dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='CityscapesDataset', data_root='data/demo/cityscapes/', _scope_='mmseg',
                     data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                     pipeline=_test_pipeline, indices=[0, 5, 10, 15])),
    fitness_samples=4,
    min_accuracy=0.0,  # after 3 iterations every student is near its initialisation
    seg_options=dict(ignore_index=255, cka_feature='head_input', cka_pixels=0))
top_k = 2
