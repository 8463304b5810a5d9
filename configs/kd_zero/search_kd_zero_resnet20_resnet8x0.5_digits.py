# Demo KD-Zero search on the digits pair (resnet20 -> resnet8): finishes on 2 CPU cores in a few minutes.
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py
#   python tools/kd_zero/search.py configs/kd_zero/search_kd_zero_resnet20_resnet8x0.5_digits.py --mode random  # Rand-KD
# The paper's settings (population 20, 100 iterations) are the EvolutionConfig defaults; this demo shrinks them.
base_config = '{{fileDirname}}/kd_zero_resnet20_resnet8x0.5_1xb32-30e_digits.py'
work_dir = 'work_dirs/kd_zero_search_digits'

# [R] typed slots. The demo drops W_f in {0.01, 0.05, 20, 50, 100}: the paper finds the best weights in [1, 10], and
# with tau^2 <= 64 the large weights are mostly rejected as exploding, which a few-minute demo cannot afford.
search_space = dict(knowledge=('feature', 'embedding', 'logits'), slot_typing=True,
                    weights=(0.1, 0.5, 1.0, 2.0, 5.0, 10.0))
search = dict(
    population_size=6,  # [P] 20
    iterations=12,  # [P] 100
    parents=3,  # top 50%
    p_swap=0.5,
    p_mutation=0.2,
    # [R] 1 = the spec's steady state; 2 here gives each rank of a 2-process search (torchrun) work in every
    # generation (ranks claim a generation's candidates from a work queue); population_size // 2 = generational
    offspring_per_generation=2,
    mode='evolution',  # 'random' = Rand-KD baseline with the same budget
    shrink_interval=4,  # [R] 10
    shrink_eta=0.1,
    tail_fraction=0.25,
    fitness_normalize=True,  # [R] z-score the three fitness terms across the pool
    seed=0)
proxy = dict(
    # [P] 5% of the epochs. [R] demo: 20% of the 30 epochs = 6 epochs (60 iterations): after the paper's 5% (20
    # iterations) the resnet8x0.5 student is still at chance with almost every distiller (a 53-candidate search
    # at 5% accepted 5, 24 rejected for accuracy <= chance), so the fitness would rank noise
    fraction=0.2,
    seed=0,
    base_batch_size=32,  # one process at batch 32, lr 0.05, as the final distillation (no scaling)
    # [R] METHODS.md 2.5 thresholds, except the collapse rule: they assume CIFAR epochs of ~780 iterations; a digits
    # epoch is 10, in which plain CE does not reliably fall by 5%, so the demo judges after 2 epochs (20 of the 60
    # proxy iterations) and rejects a loss that did not fall at all.
    rejection=dict(max_kd=1e3, max_kd_ratio=100.0, min_drop=0.0, check_iter=20),
    # the fitness is measured on 1 in 5 training images (60 of 300, all classes) that the proxies do not train on
    # (mmkd_ext/held_out.py), never on val, the split results are reported on
    held_out_every=5,
    fitness_samples=60,
    min_accuracy=20.0)  # [R] 2 x chance (10 classes)
top_k = 5  # candidates shown in the operation-frequency chart
