# KD-Zero search on an ImageNet subset, ResNet-34 -> ResNet-18 ([P] Sec. 4.2 "similar EA settings on a subset of
# ImageNet"; [R] METHODS.md 2.5: 100 classes x 260 images, proxy = 5% of the 100 epochs = 5 epochs, schedule compressed
# proportionally). [P] population 20, 100 iterations. The fitness split holds 20 other training images of each of the
# 100 classes (2,000 images, [R] n = 2,000), never the val set. Labels keep their 1k ids (same 1000-way models as the
# final distillation). Write the two annotation files first:
#   python -m mmkd_ext.kd_zero.imagenet_subset data/imagenet        # meta/kd_zero_{train_100x260,fitness_100x20}.txt
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet34_resnet18_in1k-subset.py
# Its best genome is the distiller of the ImageNet config AND of the COCO configs: the paper (Sec. 4.3) distils the
# detectors with the distiller searched on ImageNet (kd_zero_fpn_*_coco.py: put best_genome.json into
# kd_zero_genome). A search config on a detection config fails with a message pointing here.
base_config = '{{fileDirname}}/kd_zero_resnet34_resnet18_8xb32-100e_in1k.py'
work_dir = 'work_dirs/kd_zero_search_resnet34_resnet18_in1k-subset'
search_space = dict(knowledge=('feature', 'embedding', 'logits'), slot_typing=True)
search = dict(population_size=20, iterations=100, parents=10, p_swap=0.5, p_mutation=0.2, offspring_per_generation=1,
              mode='evolution', shrink_interval=10, shrink_eta=0.1, tail_fraction=0.25, fitness_normalize=True,
              seed=0)
_test_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224), dict(type='PackInputs')
]
proxy = dict(
    task='classification',
    # [R] a proxy is one process at the per-GPU batch 32; the lr 0.1 is tuned for 8 GPUs x 32 = 256, so the proxy
    # trains at 0.1 x 32/256 = 0.0125 (linear rule, MMEngine auto_scale_lr)
    base_batch_size=256,
    fraction=0.05,
    seed=0,
    rejection=dict(max_kd=1e3, max_kd_ratio=100.0, min_drop=0.05),  # [R] METHODS.md 2.5
    cfg_options=dict(train_dataloader=dict(dataset=dict(ann_file='meta/kd_zero_train_100x260.txt'))),
    fitness_dataloader=dict(
        batch_size=100, num_workers=8, sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='ImageNet', data_root='data/imagenet', split='train', _scope_='mmpretrain',
                     ann_file='meta/kd_zero_fitness_100x20.txt', pipeline=_test_pipeline)),
    fitness_samples=2000,
    min_accuracy=2.0)  # [R] 2 x chance of the 100 subset classes
top_k = 10
