"""The evolutionary search: operators, shrinkage, rejection rules, resumable state (cheap fitness)."""
import json
import os.path as osp
import random

import pytest
import torch

from mmkd_ext.kd_zero.genome import GENES, Genome, SearchSpace, validate
from mmkd_ext.kd_zero.hooks import check_losses, check_progress
from mmkd_ext.kd_zero.losses import KDZeroLoss
from mmkd_ext.kd_zero.proxy import EvalResult
from mmkd_ext.kd_zero.search import DistillerSearch, EvolutionConfig, mutate, shrink, uniform_crossover


def cheap_fitness(genome: Genome) -> EvalResult:
    """A deterministic stand-in for a proxy run: the genome's real loss on fixed tensors.

    Non-finite losses are rejected as in the real protocol; the terms depend on the genome only."""
    gen = torch.Generator().manual_seed(0)
    shape = (4, 8, 4, 4) if genome.knowledge == 'feature' else (4, 10)
    s, t = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    torch.manual_seed(0)  # stochastic ops (mask, drop)
    logits = torch.randn(4, 10, generator=gen)
    value = KDZeroLoss(genome=genome.to_dict())(s, t, logits, logits.flip(0), torch.arange(4)).item()
    reason = check_losses({'distill.loss_kdzero': value, 'student.loss': 1.0}, first=True)
    if reason:
        return EvalResult('rejected', reason=reason, iters=1, planned_iters=10)
    terms = dict(ce=abs(value) % 3, sharpness_gap=genome.weight / 100, cka=1 / genome.tau, accuracy=50.0)
    return EvalResult('ok', terms, iters=10, planned_iters=10)


class Counting:
    def __init__(self, fail_after=None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, genome):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt('simulated kill')
        self.calls += 1
        return cheap_fitness(genome)


CFG = dict(population_size=6, iterations=8, parents=3, offspring_per_generation=2, shrink_interval=4, seed=3)


def test_interrupted_and_resumed_search_equals_an_uninterrupted_one(tmp_path):
    full = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path / 'a'), progress=False)
    full.run()
    killed = Counting(fail_after=9)  # dies in the middle of a generation
    with pytest.raises(KeyboardInterrupt):
        DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), killed, str(tmp_path / 'b'), progress=False).run()
    resumed_eval = Counting()
    resumed = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), resumed_eval, str(tmp_path / 'b'),
                              progress=False)
    resumed.run()
    assert [r['genome'] for r in resumed.state['records']] == [r['genome'] for r in full.state['records']]
    assert resumed.state['population'] == full.state['population']
    assert resumed.state['probs'] == full.state['probs']
    # nothing that finished before the kill was trained again
    assert killed.calls + resumed_eval.calls == len(full.state['records'])


def test_state_file_is_written_every_generation(tmp_path):
    search = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False)
    search.run(max_generations=2)
    with open(osp.join(str(tmp_path), 'search_state.json')) as f:
        state = json.load(f)
    assert state['generation'] == 2 and len(state['history']) == 2


def test_search_budget_and_population_size(tmp_path):
    search = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False)
    best = search.run()
    assert search.state['iterations_done'] == CFG['iterations']
    assert len(search.state['population']) == CFG['population_size']
    assert best['result']['status'] == 'ok'
    keys = [Genome.from_dict(r['genome']).key() for r in search.state['records']]
    assert len(keys) == len(set(keys))  # no candidate evaluated twice


def test_rand_kd_spends_the_same_budget_without_evolution(tmp_path):
    search = DistillerSearch(SearchSpace(), EvolutionConfig(**dict(CFG, mode='random')), Counting(), str(tmp_path),
                             progress=False)
    search.run()
    assert search.state['iterations_done'] == CFG['iterations']
    assert all(abs(p - 1 / len(t)) < 1e-12 for t in search.state['probs'].values() for p in t.values())


def test_crossover_takes_each_gene_from_a_parent_and_mutation_stays_valid():
    rng, space = random.Random(0), SearchSpace()
    a = Genome('feature', 'satt', 'local_r2', 'softmax_HW', 'kl', 1.0, 'no', 4.0)
    b = Genome('logits', 'no', 'tanh', 'norm_C', 'l2', 10.0, 'focal', 1.0)
    for _ in range(50):
        child = uniform_crossover(a, b, rng)
        assert all(getattr(child, g) in (getattr(a, g), getattr(b, g)) for g in GENES)
        mutated = mutate(child, space, rng, 0.2)
        validate(mutated, space)


def test_shrink_by_hand():
    probs = {'distance': {'l1': 0.5, 'l2': 0.5}}
    out = shrink(probs, {'distance': {'l1': 2}}, eta=0.1)
    p1 = 0.5 * 0.81
    assert out['distance']['l1'] == pytest.approx(p1 / (p1 + 0.5))
    floor = shrink(probs, {'distance': {'l1': 1000}}, eta=0.1)
    assert floor['distance']['l1'] == pytest.approx(0.005 / (0.005 + 0.5))


def test_rejection_rules():
    assert 'non-finite' in check_losses({'loss': float('nan')})
    assert 'exploding' in check_losses({'distill.loss_kdzero': 2e3, 'student.loss': 2.0}, first=True)
    assert '100 x CE' in check_losses({'distill.loss_kdzero': 300.0, 'student.loss': 2.0}, first=True)
    assert check_losses({'distill.loss_kdzero': 300.0, 'student.loss': 2.0}, first=False) is None
    assert 'collapsed' in check_progress([2.0, 2.0, 1.95, 1.94, 1.93])
    assert check_progress([2.0, 1.5, 1.4, 1.3]) is None


def test_resume_with_other_settings_is_refused_but_more_iterations_extend_the_search(tmp_path):
    DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False).run()
    with pytest.raises(ValueError, match=r"different search settings \['p_mutation'\]"):
        DistillerSearch(SearchSpace(), EvolutionConfig(**dict(CFG, p_mutation=0.5)), Counting(), str(tmp_path),
                        progress=False).run()
    longer = DistillerSearch(SearchSpace(), EvolutionConfig(**dict(CFG, iterations=10)), Counting(), str(tmp_path),
                             progress=False)
    longer.run()
    assert longer.state['iterations_done'] == 10


def test_resume_with_other_teacher_or_proxy_settings_is_refused_naming_the_keys(tmp_path):
    saved = {'weights.model.teacher_ckpt.sha256': 'a' * 64, 'proxy.fraction': 0.2, 'base.model.tau': 4.0}
    first = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False,
                            fingerprint=saved)
    first.run(max_generations=1)
    same = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False,
                           fingerprint=dict(saved))
    assert same.load() and same.state['records'] == first.state['records']
    changed = {**saved, 'weights.model.teacher_ckpt.sha256': 'b' * 64, 'proxy.fraction': 0.05}
    other = DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False,
                            fingerprint=changed)
    with pytest.raises(ValueError, match=r"other settings: \['proxy.fraction', "
                                         r"'weights.model.teacher_ckpt.sha256'\] changed \(proxy.fraction: saved "
                                         r"0.2, now 0.05"):
        other.run()
    # a key added or removed is a change as well
    with pytest.raises(ValueError, match=r"\['base.model.tau'\] changed"):
        DistillerSearch(SearchSpace(), EvolutionConfig(**CFG), Counting(), str(tmp_path), progress=False,
                        fingerprint={k: v for k, v in saved.items() if k != 'base.model.tau'}).load()


def test_fingerprint_hashes_the_teacher_file_and_holds_proxy_and_base_settings(tmp_path):
    import hashlib

    from mmengine.config import Config

    from mmkd_ext.kd_zero.search import search_fingerprint
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs', 'kd_zero', 'search_kd_zero_resnet20_resnet8x0.5_digits.py'))
    teacher = tmp_path / 'teacher.pth'
    teacher.write_bytes(b'97 % teacher')
    base = Config.fromfile(cfg.base_config)
    base.model.teacher_ckpt = str(teacher)
    before = search_fingerprint(cfg, base)
    assert before['weights.model.teacher_ckpt.sha256'] == hashlib.sha256(b'97 % teacher').hexdigest()
    assert before['proxy.fraction'] == 0.2 and before['base.model.teacher_ckpt'] == str(teacher)
    teacher.write_bytes(b'12 % teacher')  # same path, other weights
    after = search_fingerprint(cfg, base)
    assert sorted(k for k in before if before[k] != after[k]) == ['weights.model.teacher_ckpt.sha256']
