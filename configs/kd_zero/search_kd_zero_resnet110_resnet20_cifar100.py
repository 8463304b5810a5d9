# KD-Zero search on CIFAR-100, resnet110 -> resnet20, with the paper's settings [P]: population 20, 100 iterations,
# proxy = 5% of the 240 epochs (12 epochs, schedule compressed proportionally [R]). [R] METHODS.md 2.4: the fitness is
# measured on 5,000 training images held out from the proxy training (indices 45000-49999; CIFAR-100's file order is
# class-shuffled, so the split is close to stratified), never on the test set.
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet110_resnet20_cifar100.py
#   torchrun --nproc_per_node 8 tools/kd_zero/search.py CONFIG --launcher pytorch --cfg-options \
#       search.offspring_per_generation=8
base_config = '{{fileDirname}}/kd_zero_resnet110_resnet20_1xb64-240e_cifar100.py'
work_dir = 'work_dirs/kd_zero_search_resnet110_resnet20_cifar100'
search_space = dict(knowledge=('feature', 'embedding', 'logits'), slot_typing=True)
search = dict(population_size=20, iterations=100, parents=10, p_swap=0.5, p_mutation=0.2, offspring_per_generation=1,
              mode='evolution', shrink_interval=10, shrink_eta=0.1, tail_fraction=0.25, fitness_normalize=True,
              seed=0)
_held_out = list(range(45000, 50000))
proxy = dict(
    fraction=0.05,
    seed=0,
    base_batch_size=64,  # one process at batch 64, lr 0.1, as the final distillation (no scaling)
    rejection=dict(max_kd=1e3, max_kd_ratio=100.0, min_drop=0.05),
    cfg_options=dict(train_dataloader=dict(dataset=dict(indices=list(range(45000))))),
    fitness_dataloader=dict(
        batch_size=250, num_workers=4,
        dataset=dict(type='CIFAR100', data_root='data/cifar100', split='train', pipeline=[dict(type='PackInputs')],
                     indices=_held_out, _scope_='mmpretrain'),
        sampler=dict(type='DefaultSampler', shuffle=False)),
    fitness_samples=2000,  # [R]
    min_accuracy=2.0)  # [R] 2 x chance
top_k = 10
