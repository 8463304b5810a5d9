"""Run under torchrun by tests/kd_zero/test_search_distributed.py (2 CPU ranks, gloo).

    python -m torch.distributed.run --nproc_per_node 2 dist_search_worker.py OUT_DIR

1. Work queue: rank 1 starts claiming 3 s late, so rank 0 must have claimed every item of the first queue,
   and the two ranks together claim each item of a second queue exactly once.
2. A DistillerSearch with a cheap deterministic evaluator; each rank logs the candidates it trained to
   ``OUT_DIR/trained_rank{r}.txt`` and rank 0 writes the final state to ``OUT_DIR/state.json``.
"""
import json
import os
import os.path as osp
import sys
import time

import torch.distributed as dist

from mmkd_ext.kd_zero.genome import Genome, SearchSpace
from mmkd_ext.kd_zero.proxy import EvalResult
from mmkd_ext.kd_zero.search import DistillerSearch, EvolutionConfig, WorkQueue

SEARCH = dict(population_size=6, iterations=8, parents=3, offspring_per_generation=4, shrink_interval=4, seed=3)


def hashed_fitness(genome: Genome) -> EvalResult:
    """Deterministic terms from the genome alone; a few genomes are 'rejected' (as loss rejection would)."""
    h = int(genome.key().encode().hex()[-8:], 16)
    if h % 5 == 0:
        return EvalResult('rejected', reason='exploding (hashed)', iters=1, planned_iters=10)
    terms = dict(ce=(h % 97) / 97, sharpness_gap=genome.weight / 100, cka=1 / genome.tau, accuracy=50.0)
    return EvalResult('ok', terms, iters=10, planned_iters=10)


class Logged:
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, genome: Genome) -> EvalResult:
        with open(self.path, 'a') as f:
            f.write(genome.key() + '\n')
        time.sleep(0.05)
        return hashed_fitness(genome)


def main(out: str) -> None:
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    if rank == 1:
        time.sleep(3)
    first = list(WorkQueue('test/late', 5))
    dist.barrier()
    second = list(WorkQueue('test/both', 40))
    with open(osp.join(out, f'queue_rank{rank}.json'), 'w') as f:
        json.dump(dict(first=first, second=second), f)
    search = DistillerSearch(SearchSpace(), EvolutionConfig(**SEARCH), Logged(osp.join(out, f'trained_rank{rank}.txt')),
                             osp.join(out, 'search'), progress=False)
    search.run()
    if rank == 0:
        with open(osp.join(out, 'state.json'), 'w') as f:
            json.dump(search.state, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    os.makedirs(sys.argv[1], exist_ok=True)
    main(sys.argv[1])
